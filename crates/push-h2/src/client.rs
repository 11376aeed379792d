//! A small HTTP/2 client (h2c with prior knowledge) that receives pushed responses: the
//! resources pushed with a page, and events pushed on a subscription.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use h2::client::{PushPromises, ResponseFuture, SendRequest};
use http::{HeaderMap, Request, Response, StatusCode};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::Error;

/// A response received in full.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request's path (for a pushed response, the promised path).
    pub path: String,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// An HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Client {
    send: SendRequest<Bytes>,
    authority: String,
}

impl Client {
    /// Connects to `addr` with prior knowledge; `push` sets `SETTINGS_ENABLE_PUSH`.
    ///
    /// # Errors
    ///
    /// When the connection or the handshake fails.
    pub async fn connect(addr: impl ToSocketAddrs, push: bool) -> Result<Self, Error> {
        let tcp = TcpStream::connect(addr).await.map_err(Error::io)?;
        let authority = tcp.peer_addr().map_err(Error::io)?.to_string();
        let _ = tcp.set_nodelay(true);
        let (send, conn) = h2::client::Builder::new()
            .enable_push(push)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(Error::h2)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { send, authority })
    }

    async fn request(&mut self, path: &str) -> Result<ResponseFuture, Error> {
        let req = Request::get(format!("http://{}{path}", self.authority))
            .body(())
            .map_err(Error::request)?;
        let mut send = self.send.clone().ready().await.map_err(Error::h2)?;
        let (response, _) = send.send_request(req, true).map_err(Error::h2)?;
        Ok(response)
    }

    /// `GET path`: the informational responses (103) received before the final one, the final
    /// response, and every response pushed with it.
    ///
    /// # Errors
    ///
    /// When the request or a pushed stream fails.
    pub async fn get(
        &mut self,
        path: &str,
    ) -> Result<(Vec<Response<()>>, Received, Vec<Received>), Error> {
        let mut response = self.request(path).await?;
        let mut promises = response.push_promises();
        let mut informational = Vec::new();
        while let Some(info) = std::future::poll_fn(|cx| response.poll_informational(cx)).await {
            informational.push(info.map_err(Error::h2)?);
        }
        let main = read(path.to_owned(), response.await.map_err(Error::h2)?).await?;
        let mut pushed = Vec::new();
        while let Some(promise) = promises.push_promise().await {
            let (req, response) = promise.map_err(Error::h2)?.into_parts();
            let path = req.uri().path().to_owned();
            pushed.push(read(path, response.await.map_err(Error::h2)?).await?);
        }
        Ok((informational, main, pushed))
    }

    /// `GET path` (e.g. `/h2/news?since=CURSOR`) as an event subscription.
    ///
    /// # Errors
    ///
    /// When the request fails.
    pub async fn subscribe(&mut self, path: &str) -> Result<Subscription, Error> {
        let mut response = self.request(path).await?;
        let promises = response.push_promises();
        let response = response.await.map_err(Error::h2)?;
        let (head, body) = response.into_parts();
        Ok(Subscription {
            head: Response::from_parts(head, ()),
            body,
            promises,
            lines: BytesMut::new(),
        })
    }
}

async fn read(path: String, response: Response<h2::RecvStream>) -> Result<Received, Error> {
    let (head, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(Error::h2)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    Ok(Received {
        path,
        status: head.status,
        headers: head.headers,
        body: data.freeze(),
    })
}

/// An event received as a pushed response.
#[derive(Debug, Clone)]
pub struct PushedEvent {
    /// The promised path (`{subscription path}/{cursor}`).
    pub path: String,
    /// The event's cursor ([`EVENT_ID`](crate::EVENT_ID)).
    pub id: String,
    /// The payload.
    pub data: Bytes,
    /// When it was received.
    pub received_at: SystemTime,
}

/// An open event subscription.
#[derive(Debug)]
pub struct Subscription {
    /// The subscription response's head.
    pub head: Response<()>,
    body: h2::RecvStream,
    promises: PushPromises,
    lines: BytesMut,
}

impl Subscription {
    /// The next pushed event; `None` when the server ended the stream.
    ///
    /// # Errors
    ///
    /// When a pushed stream fails.
    pub async fn next_event(&mut self) -> Result<Option<PushedEvent>, Error> {
        let Some(promise) = self.promises.push_promise().await else {
            return Ok(None);
        };
        let (req, response) = promise.map_err(Error::h2)?.into_parts();
        let response = response.await.map_err(Error::h2)?;
        let received = read(req.uri().path().to_owned(), response).await?;
        let id = received
            .headers
            .get(crate::EVENT_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Some(PushedEvent {
            path: received.path,
            id,
            data: received.body,
            received_at: SystemTime::now(),
        }))
    }

    /// The next line of the subscription's own body: the outcome first, then (when push is
    /// off) one event object per line, and the end line.
    ///
    /// # Errors
    ///
    /// When the stream fails.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if let Some(nl) = self.lines.iter().position(|&b| b == b'\n') {
                let line = self.lines.split_to(nl + 1);
                return Ok(Some(line.freeze().slice(..nl)));
            }
            match self.body.data().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(Error::h2)?;
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.lines.extend_from_slice(&chunk);
                }
                None => return Ok(None),
            }
        }
    }
}
