//! Tests over HTTPS with a real client.
