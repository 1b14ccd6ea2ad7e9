//! A WebSocket client for the real-time suites and benchmarks (tokio-tungstenite, a real
//! RFC 6455 client), speaking `orrery_realtime::protocol`'s JSON messages.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    socket: Socket,
    /// Response headers of the handshake.
    pub headers: http::HeaderMap,
    /// The close frame's code, once the server closed.
    pub closed_with: Option<u16>,
}

/// A refused handshake: the status and the problem the server answered with.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub problem: Value,
}

impl WsClient {
    /// Opens `ws://…{path}` (`address` is the server's `http://…`), with `key` as a bearer
    /// header when given.
    pub async fn connect(address: &str, path: &str, key: Option<&str>) -> Result<Self, Refused> {
        let url = format!("{}{path}", address.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("a WebSocket URL");
        if let Some(key) = key {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, response)) => Ok(Self {
                socket,
                headers: response.headers().clone(),
                closed_with: None,
            }),
            Err(Error::Http(response)) => Err(Refused {
                status: response.status().as_u16(),
                problem: response
                    .body()
                    .as_ref()
                    .and_then(|body| serde_json::from_slice(body).ok())
                    .unwrap_or(Value::Null),
            }),
            Err(err) => panic!("WebSocket handshake failed: {err}"),
        }
    }

    /// [`Self::connect`] that must succeed.
    pub async fn open(address: &str, path: &str, key: Option<&str>) -> Self {
        match Self::connect(address, path, key).await {
            Ok(client) => client,
            Err(refused) => panic!("refused: {refused:?}"),
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next server message within `wait` (`None`: none came, or the server closed).
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).expect("JSON messages"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.closed_with = frame.map(|frame| u16::from(frame.code));
                    return None;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// The next message of type `kind` within `wait`, skipping others (heartbeats).
    pub async fn next_of(&mut self, kind: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(left).await?;
            if message["type"] == kind {
                return Some(message);
            }
        }
    }

    /// Every `event` message that arrives within `wait`: their entries.
    pub async fn events(&mut self, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(message) if message["type"] == "event" => {
                    events.push(message["event"].clone())
                }
                Some(_) => {}
                None => return events,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
