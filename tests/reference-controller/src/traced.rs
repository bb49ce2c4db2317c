//! A tower layer under every kube client request that writes its ledger line: the
//! request as it goes on the wire (after the base URI, auth and User-Agent are set),
//! its status, HTTP version and the response body bytes the controller received.
//!
//! The line is written when the response body ends or is dropped (a WATCH's when the
//! controller closes it), or when the request fails or is abandoned before a response.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header::USER_AGENT, Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use crate::{
    classify,
    ledger::{self, Ledger, Record},
};

/// Adds [`Traced`] to a service.
#[derive(Clone)]
pub struct TracedLayer {
    ledger: Ledger,
    /// The HTTP version the client speaks, until a response says otherwise.
    http_version: &'static str,
}

impl TracedLayer {
    pub fn new(ledger: Ledger, http_version: &'static str) -> Self {
        Self {
            ledger,
            http_version,
        }
    }
}

impl<S> Layer<S> for TracedLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            layer: self.clone(),
        }
    }
}

/// Writes one ledger line per request.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    layer: TracedLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Traced<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Unpin,
{
    type Response = Response<Counted<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut line = Line {
            ledger: self.layer.ledger.clone(),
            record: Some(sent(&req, self.layer.http_version)),
        };
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            if let Some(record) = &mut line.record {
                record.status = Some(response.status().as_u16());
                record.http_version = version(response.version());
            }
            Ok(response.map(|inner| Counted { inner, line }))
        })
    }
}

/// The ledger record of a request about to be sent on `http_version`.
fn sent<B>(req: &Request<B>, http_version: &'static str) -> ledger::Request {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let verb = classify::verb(&method, &path, &query);
    ledger::Request {
        time: ledger::now(),
        rv_class: classify::rv_class(verb, &query),
        resource: classify::resource(&path),
        verb,
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        method,
        path,
        query,
        http_version,
        status: None,
        bytes: 0,
        finished: false,
    }
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "other",
    }
}

/// A request's ledger line, written once: when dropped.
struct Line {
    ledger: Ledger,
    record: Option<ledger::Request>,
}

impl Drop for Line {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.ledger.write(&Record::Request(record));
        }
    }
}

/// A response body that counts the bytes read through it.
pub struct Counted<B: Body> {
    inner: B,
    line: Line,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(record) = &mut self.line.record {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    record.bytes += frame.data_ref().map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(None) => record.finished = true,
                Poll::Ready(Some(Err(_))) | Poll::Pending => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for Counted<B> {
    fn drop(&mut self) {
        // A reader may stop at is_end_stream() without polling the final None.
        if let Some(record) = &mut self.line.record {
            record.finished |= self.inner.is_end_stream();
        }
    }
}
