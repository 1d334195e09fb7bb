//! The protocol buffer messages of tracer, generated from `proto/*.proto`.
//!
//! This crate owns the schemas and nothing else: no I/O, no logic beyond
//! small helpers on the generated types.

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tracer.v1.rs"));
}

pub use v1::*;

/// Decodes a stream of length-delimited events (the daemon's `events.pb`).
/// Returns the events decoded before the first damaged one and, if there was
/// one, the byte offset where decoding stopped and why.
pub fn decode_events(mut data: &[u8]) -> (Vec<Event>, Option<(usize, prost::DecodeError)>) {
    use prost::Message as _;
    let total = data.len();
    let mut out = Vec::new();
    while !data.is_empty() {
        let at = total - data.len();
        match Event::decode_length_delimited(&mut data) {
            Ok(e) => out.push(e),
            Err(err) => return (out, Some((at, err))),
        }
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn decodes_a_stream_and_reports_damage() {
        let mut buf = Vec::new();
        for i in 0..3 {
            Event {
                seq: i,
                comm: "x".into(),
                ..Default::default()
            }
            .encode_length_delimited(&mut buf)
            .unwrap();
        }
        let (ev, err) = decode_events(&buf);
        assert_eq!(ev.len(), 3);
        assert!(err.is_none());
        let (ev, err) = decode_events(&buf[..buf.len() - 1]);
        assert_eq!(ev.len(), 2);
        assert_eq!(err.unwrap().0, buf.len() - 6);
    }
}
