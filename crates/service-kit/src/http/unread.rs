//! Reading the rest of a request body that the service answered without reading.
//!
//! A handler may answer before it reads the body: a caller refused by role, a bad path id, a
//! method the route does not have. hyper then closes the connection with the body unread. With
//! a large body the kernel answers the bytes still arriving with a reset, and a client still
//! sending (the gateway streaming an upload) loses the answer and reports a 502; with a small one
//! whose bytes trail the head, the gateway's pooled connection is closed under its next request
//! ("connection closed before message completed", another 502). Either counts against the
//! service's breaker. Reading the rest first, within the body limit and a time limit (nginx's
//! "lingering close"), lets the answer arrive and keeps the connection reusable.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use futures::future::{BoxFuture, Either};
use http_body_util::BodyExt;
use tower::{Layer, Service};

/// How long the rest of a refused body may take to arrive before the connection is closed.
const PATIENCE: Duration = Duration::from_secs(10);

/// After an error answer, reads (and drops) what the handler left of the body, up to `limit`
/// bytes. A body declared larger than `limit` is the body limit's to refuse.
#[derive(Clone, Copy)]
pub(super) struct DrainRefusedBodiesLayer {
    pub(super) limit: usize,
}

impl<S> Layer<S> for DrainRefusedBodiesLayer {
    type Service = DrainRefusedBodies<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DrainRefusedBodies {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`DrainRefusedBodiesLayer`].
#[derive(Clone)]
pub(super) struct DrainRefusedBodies<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<Request> for DrainRefusedBodies<S>
where
    S: Service<Request, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response<B>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let limit = self.limit;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Requests without a body (most reads) pay nothing.
        let worth_it = match declared {
            Some(length) => length > 0 && length <= limit as u64,
            None => request.headers().contains_key(header::TRANSFER_ENCODING),
        };
        if !worth_it {
            return Either::Left(self.inner.call(request));
        }
        let (parts, body) = request.into_parts();
        let shared = SharedBody(Arc::new(Mutex::new(Some(body))));
        let answer = self
            .inner
            .call(Request::from_parts(parts, Body::new(shared.clone())));
        Either::Right(Box::pin(async move {
            let response = answer.await?;
            // Only after an error: a success may have handed the body to work still reading it.
            if response.status().is_client_error() || response.status().is_server_error() {
                shared.drain(limit).await;
            }
            Ok(response)
        }))
    }
}

/// The request body, readable by the handler while the middleware keeps a way to finish it.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Option<Body>>>);

impl SharedBody {
    async fn drain(&self, limit: usize) {
        let body = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut body) = body else {
            return;
        };
        let mut left = limit;
        let _ = tokio::time::timeout(PATIENCE, async {
            while let Some(Ok(frame)) = body.frame().await {
                let read = frame.data_ref().map_or(0, Bytes::len);
                if read > left {
                    break;
                }
                left -= read;
            }
        })
        .await;
    }
}

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), HttpBody::size_hint)
    }
}
