//! Bodies in and out of h2 streams, with flow control.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::{RecvStream, SendStream};
use http_body::{Body, Frame, SizeHint};

/// A request body read from an h2 stream; each chunk read gives its flow-control window back,
/// so a handler that does not read stops the client by flow control alone.
#[derive(Debug)]
pub struct H2Body {
    recv: Option<RecvStream>,
    trailers: bool,
}

impl H2Body {
    pub(crate) fn new(recv: RecvStream) -> Self {
        let done = recv.is_end_stream();
        Self {
            recv: (!done).then_some(recv),
            trailers: false,
        }
    }

    /// An empty body (for the requests of pushed responses).
    pub(crate) fn empty() -> Self {
        Self {
            recv: None,
            trailers: false,
        }
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = crate::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::Error>>> {
        let this = self.get_mut();
        let Some(recv) = this.recv.as_mut() else {
            return Poll::Ready(None);
        };
        if !this.trailers {
            match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(crate::Error::h2(e)))),
                Poll::Ready(None) => this.trailers = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match recv.poll_trailers(cx) {
            Poll::Ready(Ok(Some(trailers))) => {
                this.recv = None;
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Poll::Ready(Ok(None)) => {
                this.recv = None;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(crate::Error::h2(e)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Sends `data` on `stream`, waiting for flow-control capacity (the client's window) instead of
/// buffering beyond it.
pub(crate) async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return stream.send_data(data, end);
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e),
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, end && data.is_empty())?;
    }
    Ok(())
}

/// Streams a response body onto `stream`, ending it. While the body has nothing to send, the
/// stream is watched: a reset by the client (or the connection's end) stops at once, so a body
/// that waits for events (SSE, a stream) is dropped with everything it holds.
pub(crate) async fn send_body<B>(stream: &mut SendStream<Bytes>, body: B) -> Result<(), h2::Error>
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    loop {
        // The handler's error type is dropped here, so it need not be `Send`.
        let next = std::future::poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Ok(frame)),
            Poll::Pending => match stream.poll_reset(cx) {
                Poll::Ready(Ok(reason)) => Poll::Ready(Err(h2::Error::from(reason))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        })
        .await?
        .map(|r| r.map_err(|_| ()));
        match next {
            None => return stream.send_data(Bytes::new(), true),
            Some(Err(_)) => {
                stream.send_reset(h2::Reason::INTERNAL_ERROR);
                return Ok(());
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => send_data(stream, data, false).await?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return stream.send_trailers(trailers);
                    }
                }
            },
        }
    }
}
