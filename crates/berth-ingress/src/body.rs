//! The bodies the ingress hands to hyper, as plain types rather than
//! boxed trait objects: wrapped layer by layer (the backend's body, the
//! in-flight count, the exchange's byte count), an answer cost three
//! allocations and as many dynamic calls per frame.

use crate::backends::Returning;
use crate::balance::InFlight;
use crate::observe::Exchange;
use crate::park::Open;
use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a request is answered with, before it is counted.
pub enum Reply {
    /// A short text of the ingress's own (404, 503...); `None` once sent,
    /// or for no body at all (a tunnel's 101).
    Text(Option<Bytes>),
    /// The backend's body; the request counts as in flight until it ends.
    Upstream {
        body: Returning,
        _inflight: InFlight,
    },
}

impl Reply {
    pub fn text(s: String) -> Reply {
        Reply::Text(Some(Bytes::from(s)))
    }

    pub fn empty() -> Reply {
        Reply::Text(None)
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Reply::Text(t) => Poll::Ready(t.take().map(|b| Ok(Frame::data(b)))),
            Reply::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Text(t) => t.is_none(),
            Reply::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Text(t) => SizeHint::with_exact(t.as_ref().map_or(0, |b| b.len() as u64)),
            Reply::Upstream { body, .. } => body.size_hint(),
        }
    }
}

/// A reply as hyper sends it: its bytes counted, the exchange recorded
/// (metrics, access log) and the HTTP/1 connection's request closed when
/// it is dropped.
pub struct Answer {
    reply: Reply,
    ex: Exchange,
    _open: Option<Open>,
}

impl Answer {
    pub fn new(reply: Reply, ex: Exchange, open: Option<Open>) -> Answer {
        Answer {
            reply,
            ex,
            _open: open,
        }
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let me = self.get_mut();
        let polled = Pin::new(&mut me.reply).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &polled {
            if let Some(d) = f.data_ref() {
                me.ex.sent(d.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.reply.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.reply.size_hint()
    }
}

/// A request's body toward a backend.
pub enum OutBody {
    Empty,
    /// The client's, up to the body limit.
    Client(Limited<Incoming>),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            OutBody::Empty => Poll::Ready(None),
            OutBody::Client(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutBody::Empty => true,
            OutBody::Client(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Empty => SizeHint::with_exact(0),
            OutBody::Client(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_text_reply_is_sent_once_with_its_exact_size() {
        let r = Reply::text("no route\n".into());
        assert_eq!(r.size_hint().exact(), Some(9));
        assert!(!r.is_end_stream());
        let got = r.collect().await.expect("body").to_bytes();
        assert_eq!(&got[..], b"no route\n");
        assert!(Reply::empty().is_end_stream());
        assert_eq!(OutBody::Empty.size_hint().exact(), Some(0));
    }
}
