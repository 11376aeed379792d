//! The frames a connection writes itself: text frames built once and shared.
//!
//! A server's frames are not masked (RFC 6455 §5.1), so an event's frame, header and envelope,
//! is the same bytes for every subscriber of its topic. It is built once per event, cached on
//! the event, and written to each socket from that one buffer: no per-connection framing, no
//! copy into a write buffer. tungstenite keeps the rest: reading, the handshake's state, and
//! the control frames (pings, pongs, close), which the connection writes only when its own
//! frames are out, so the two never interleave.

use std::io::{self, IoSlice};
use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use push_core::{EncodingSlot, Event};
use tokio::io::AsyncWrite;

/// The most bytes a server frame's header takes: 2, and 8 for a length over 65,535.
pub(crate) const MAX_HEADER: usize = 10;

/// A text frame (FIN set, opcode 1, unmasked) holding `payload`.
pub(crate) fn text(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(MAX_HEADER + payload.len());
    put_header(&mut frame, payload.len());
    frame.put_slice(payload);
    frame.freeze()
}

fn put_header(frame: &mut BytesMut, len: usize) {
    frame.put_u8(0x81);
    match len {
        // Fits the 7-bit length.
        0..=125 => frame.put_u8(len as u8),
        126..=0xFFFF => {
            frame.put_u8(126);
            frame.put_u16(len as u16);
        }
        _ => {
            frame.put_u8(127);
            frame.put_u64(len as u64);
        }
    }
}

static FRAME_SLOT: EncodingSlot = EncodingSlot::new();

/// `event`'s envelope, `{"topic":T,"id":C,…}` (push-http's topic event), as a whole text frame,
/// built at most once per event.
pub(crate) fn event(event: &Event) -> Bytes {
    event.encoded(&FRAME_SLOT, |ev| {
        let object = push_http::json::event(ev);
        let topic = ev.topic().as_str();
        // `{"topic":"T",` then the object without its `{`; topic names need no escaping.
        let body = object.get(1..).unwrap_or_default();
        const OPEN: &[u8] = b"{\"topic\":\"";
        const CLOSE: &[u8] = b"\",";
        let len = OPEN.len() + topic.len() + CLOSE.len() + body.len();
        let mut frame = BytesMut::with_capacity(MAX_HEADER + len);
        put_header(&mut frame, len);
        frame.put_slice(OPEN);
        frame.put_slice(topic.as_bytes());
        frame.put_slice(CLOSE);
        frame.put_slice(body);
        frame.freeze()
    })
}

/// The most frames handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Writes every byte of `frames`, in order, in as few writes as the socket takes, then
/// flushes (a TLS stream may hold what it was given until then).
///
/// A socket without vectored writes (an HTTP/2 stream, RFC 8441) takes several frames joined
/// into one buffer, so that they still go out in one write.
pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    frames: &[Bytes],
) -> io::Result<()> {
    if frames.len() > 1 && !io.is_write_vectored() {
        let mut joined = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
        for frame in frames {
            joined.put_slice(frame);
        }
        return Box::pin(write_vectored_all(io, &[joined.freeze()])).await;
    }
    write_vectored_all(io, frames).await
}

async fn write_vectored_all<W: AsyncWrite + Unpin>(io: &mut W, frames: &[Bytes]) -> io::Result<()> {
    // Where the next write starts: a frame, and an offset into it.
    let (mut first, mut offset) = (0, 0);
    while first < frames.len() {
        let written = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (k, frame) in frames[first..].iter().take(MAX_SLICES).enumerate() {
                let from = if k == 0 { offset } else { 0 };
                slices[k] = IoSlice::new(frame.get(from..).unwrap_or_default());
                n = k + 1;
            }
            Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n])
        })
        .await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut left = written;
        while left > 0 && first < frames.len() {
            let rest = frames[first].len() - offset;
            if left >= rest {
                left -= rest;
                first += 1;
                offset = 0;
            } else {
                offset += left;
                left = 0;
            }
        }
    }
    std::future::poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::{MemoryHub, NewEvent, Topic};

    fn header_len(frame: &[u8]) -> (usize, usize) {
        assert_eq!(frame[0], 0x81, "FIN and text");
        match frame[1] {
            126 => (4, u16::from_be_bytes([frame[2], frame[3]]) as usize),
            127 => (
                10,
                u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
            ),
            n => {
                assert!(n < 126, "unmasked");
                (2, n as usize)
            }
        }
    }

    #[test]
    fn lengths_use_the_shortest_form_rfc_6455_allows() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let payload = vec![b'a'; len];
            let frame = text(&payload);
            assert_eq!(header_len(&frame), (header, len), "{len}");
            assert_eq!(&frame[header..], &payload[..]);
        }
    }

    #[test]
    fn an_event_frame_holds_push_https_topic_event() {
        let hub = MemoryHub::default();
        let topic = Topic::new("news").unwrap();
        let ev = hub
            .publish_now(&topic, NewEvent::json(r#"{"a":[1,"x"]}"#).unwrap())
            .unwrap();
        let frame = event(&ev);
        let (header, len) = header_len(&frame);
        assert_eq!(&frame[header..], &push_http::json::topic_event(&ev)[..]);
        assert_eq!(frame.len(), header + len);
        // Built once: the same buffer every time.
        assert_eq!(event(&ev).as_ptr(), frame.as_ptr());
    }

    #[tokio::test]
    async fn partial_writes_resume_where_they_stopped() {
        let frames: Vec<Bytes> = (0..100u8).map(|i| text(&vec![i; 300])).collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        // A pipe far smaller than the lot: every write is partial.
        let (mut writer, mut reader) = tokio::io::duplex(97);
        let read = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut all)
                .await
                .unwrap();
            all
        });
        write_all(&mut writer, &frames).await.unwrap();
        drop(writer);
        assert_eq!(read.await.unwrap(), expected);
    }
}
