//! The DDL of the link, read by a small tokenizer.
