//! TDS packets: the 8-byte header, reading a whole message (one or more packets), writing a
//! message split at the negotiated packet size, and the framing that carries the TDS 7.4 TLS
//! handshake inside PRELOGIN packets.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The header's length.
pub(crate) const HEADER_LEN: usize = 8;
/// The packet size before the login negotiates another.
pub(crate) const DEFAULT_PACKET_SIZE: usize = 4096;
/// The largest message the server reads (bounds a connection's memory).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Status bit 0: the last packet of a message.
const END_OF_MESSAGE: u8 = 0x01;

/// Packet types.
pub(crate) mod kind {
    /// A SQL batch.
    pub(crate) const SQL_BATCH: u8 = 0x01;
    /// An RPC request.
    pub(crate) const RPC: u8 = 0x03;
    /// The server's answers.
    pub(crate) const TABULAR_RESULT: u8 = 0x04;
    /// A cancel.
    pub(crate) const ATTENTION: u8 = 0x06;
    /// LOGIN7.
    pub(crate) const LOGIN7: u8 = 0x10;
    /// PRELOGIN (also the TLS handshake of TDS 7.4).
    pub(crate) const PRELOGIN: u8 = 0x12;
}

/// A whole message: its packet type and the payloads of its packets, joined.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) kind: u8,
    pub(crate) payload: Vec<u8>,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PacketError {
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("malformed packet: {0}")]
    Malformed(String),
}

/// Reads the next message. `Ok(None)` when the peer closed the connection between messages; a
/// connection closed inside a message is an error.
pub(crate) async fn read_message<S: AsyncRead + Unpin>(
    io: &mut S,
) -> Result<Option<Message>, PacketError> {
    let mut payload = Vec::new();
    let mut kind = None;
    loop {
        let mut header = [0u8; HEADER_LEN];
        let first = io.read(&mut header[..1]).await?;
        if first == 0 {
            return match kind {
                None => Ok(None),
                Some(_) => Err(PacketError::Malformed(
                    "connection closed mid-message".into(),
                )),
            };
        }
        io.read_exact(&mut header[1..]).await?;
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if length < HEADER_LEN {
            return Err(PacketError::Malformed(format!("packet length {length}")));
        }
        if *kind.get_or_insert(header[0]) != header[0] {
            return Err(PacketError::Malformed(
                "packet type changed inside a message".into(),
            ));
        }
        if payload.len() + length > MAX_MESSAGE {
            return Err(PacketError::Malformed("message too large".into()));
        }
        let start = payload.len();
        payload.resize(start + length - HEADER_LEN, 0);
        io.read_exact(&mut payload[start..]).await?;
        if header[1] & END_OF_MESSAGE != 0 {
            return Ok(kind.map(|kind| Message { kind, payload }));
        }
    }
}

/// Writes `payload` as a message of `kind`, in packets of at most `packet_size` bytes.
pub(crate) async fn write_message<S: AsyncWrite + Unpin>(
    io: &mut S,
    kind: u8,
    spid: u16,
    payload: &[u8],
    packet_size: usize,
) -> io::Result<()> {
    let chunk = packet_size.clamp(512, 32_767) - HEADER_LEN;
    let count = payload.len().div_ceil(chunk).max(1);
    let mut out = Vec::with_capacity(payload.len() + count * HEADER_LEN);
    for (i, part) in payload
        .chunks(chunk)
        .chain(payload.is_empty().then_some(&[][..]))
        .enumerate()
    {
        let status = if i + 1 == count { END_OF_MESSAGE } else { 0 };
        out.extend_from_slice(&packet_header(
            kind,
            status,
            HEADER_LEN + part.len(),
            spid,
            i,
        ));
        out.extend_from_slice(part);
    }
    io.write_all(&out).await?;
    io.flush().await
}

fn packet_header(kind: u8, status: u8, length: usize, spid: u16, index: usize) -> [u8; HEADER_LEN] {
    let length = (length as u16).to_be_bytes(); // callers keep packets under 32 KiB
    let spid = spid.to_be_bytes();
    let id = (index.wrapping_add(1) % 256) as u8;
    [kind, status, length[0], length[1], spid[0], spid[1], id, 0]
}

/// The transport under TLS. During the TDS 7.4 handshake (between [`Self::begin_handshake`] and
/// [`Self::handshake_complete`]) it strips the PRELOGIN headers of what it reads and wraps what it
/// writes in PRELOGIN packets; otherwise bytes pass through untouched (TDS packets before TLS, TLS
/// records after it and under TDS 8 strict).
pub(crate) struct PreloginFraming<S> {
    inner: S,
    framing: bool,
    header: [u8; HEADER_LEN],
    header_read: usize,
    remaining: usize,
    outgoing: Vec<u8>,
    written: usize,
}

impl<S> PreloginFraming<S> {
    pub(crate) fn new(inner: S) -> Self {
        PreloginFraming {
            inner,
            framing: false,
            header: [0; HEADER_LEN],
            header_read: 0,
            remaining: 0,
            outgoing: Vec::new(),
            written: 0,
        }
    }

    /// The TLS handshake starts: its records travel inside PRELOGIN packets.
    pub(crate) fn begin_handshake(&mut self) {
        self.framing = true;
    }

    /// The TLS handshake is over: from now on TLS records go on the wire as they are.
    pub(crate) fn handshake_complete(&mut self) {
        self.framing = false;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginFraming<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.framing {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.remaining == 0 {
            while this.header_read < HEADER_LEN {
                // One byte first: TLS may read on past the client's last handshake packet, into
                // the first record sent without framing (TLS records start 0x14..=0x17, never
                // 0x12). That byte ends the framing and goes to TLS as it is.
                let want = if this.header_read == 0 { 1 } else { HEADER_LEN };
                let mut hb = ReadBuf::new(&mut this.header[this.header_read..want]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut hb))?;
                if hb.filled().is_empty() {
                    return Poll::Ready(Ok(())); // end of stream
                }
                this.header_read += hb.filled().len();
                if this.header[0] != kind::PRELOGIN {
                    this.framing = false;
                    this.header_read = 0;
                    buf.put_slice(&this.header[..1]);
                    return Poll::Ready(Ok(()));
                }
            }
            let length = usize::from(u16::from_be_bytes([this.header[2], this.header[3]]));
            this.remaining = length.checked_sub(HEADER_LEN).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "packet shorter than its header")
            })?;
            this.header_read = 0;
        }
        let take = this.remaining.min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(take));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        if n == 0 {
            return Poll::Ready(Ok(()));
        }
        buf.advance(n);
        this.remaining -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> PreloginFraming<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.outgoing.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.outgoing[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.outgoing.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginFraming<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if !this.framing {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let take = buf.len().min(DEFAULT_PACKET_SIZE - HEADER_LEN);
        let header = packet_header(kind::PRELOGIN, END_OF_MESSAGE, HEADER_LEN + take, 0, 0);
        this.outgoing.extend_from_slice(&header);
        this.outgoing.extend_from_slice(&buf[..take]);
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tds_messages_split_and_join_at_the_packet_size() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        write_message(&mut wire, kind::TABULAR_RESULT, 7, &payload, 4096)
            .await
            .unwrap();
        assert_eq!(wire.len(), payload.len() + 3 * HEADER_LEN);
        assert_eq!(u16::from_be_bytes([wire[2], wire[3]]), 4096);
        let msg = read_message(&mut &wire[..]).await.unwrap().unwrap();
        assert_eq!((msg.kind, msg.payload), (kind::TABULAR_RESULT, payload));
        assert!(read_message(&mut &wire[..0]).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn tds_truncated_or_malformed_packets_are_errors() {
        let mut wire = Vec::new();
        write_message(&mut wire, kind::SQL_BATCH, 0, b"abcdef", 4096)
            .await
            .unwrap();
        for cut in 1..wire.len() {
            assert!(
                read_message(&mut &wire[..cut]).await.is_err(),
                "cut at {cut}"
            );
        }
        let mut short = wire.clone();
        short[3] = 4; // length below the header's
        assert!(read_message(&mut &short[..]).await.is_err());
    }
}
