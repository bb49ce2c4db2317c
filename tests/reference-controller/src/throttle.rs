//! Client-side rate limiting as client-go does it (flowcontrol's token bucket over
//! golang.org/x/time/rate): `burst` tokens, refilled at `qps` per second; a request
//! takes a token or waits until one is due. Every wait goes into the ledger.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

use crate::ledger::{self, Ledger, Record};

/// A token bucket: reservations may take it below zero, the debt being the wait.
#[derive(Debug)]
pub struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens refilled at `qps` per second.
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        Self {
            qps,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes a token at `now`; returns how long the caller must wait for it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst) - 1.0;
        self.at = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }
}

/// Puts a shared [`Bucket`] in front of a service.
#[derive(Clone)]
pub struct ThrottleLayer {
    bucket: Arc<Mutex<Bucket>>,
    ledger: Ledger,
}

impl ThrottleLayer {
    pub fn new(qps: f64, burst: u32, ledger: Ledger) -> Self {
        Self {
            bucket: Arc::new(Mutex::new(Bucket::new(qps, burst, Instant::now()))),
            ledger,
        }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            layer: self.clone(),
        }
    }
}

/// Waits for a token before each request.
#[derive(Clone)]
pub struct Throttle<S> {
    inner: S,
    layer: ThrottleLayer,
}

impl<S, Req> Service<Req> for Throttle<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // The inner service is readied in the call, after the wait.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let wait = self
            .layer
            .bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(Instant::now());
        let inner = self.inner.clone();
        let ledger = self.layer.ledger.clone();
        Box::pin(async move {
            if !wait.is_zero() {
                ledger.write(&Record::ThrottleWait {
                    time: ledger::now(),
                    wait_ms: wait.as_secs_f64() * 1e3,
                });
                tokio::time::sleep(wait).await;
            }
            inner.oneshot(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_free_then_requests_are_spaced_at_qps() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(20.0, 30, t0);
        for _ in 0..30 {
            assert_eq!(bucket.reserve(t0), Duration::ZERO);
        }
        let waits: Vec<u128> = (0..3).map(|_| bucket.reserve(t0).as_millis()).collect();
        assert_eq!(waits, [50, 100, 150]);
        // 1 s later 20 tokens have come in, 3 of them already promised.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..17 {
            assert_eq!(bucket.reserve(t1), Duration::ZERO);
        }
        assert_eq!(bucket.reserve(t1).as_millis(), 50);
    }

    #[test]
    fn the_bucket_holds_at_most_burst_tokens() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(20.0, 2, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert_eq!(bucket.reserve(later), Duration::ZERO);
        assert_eq!(bucket.reserve(later).as_millis(), 50);
    }
}
