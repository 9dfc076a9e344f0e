//! The outermost layer of the shell: the request id, problem+json for bare error answers and the
//! request metrics, in one service.
//!
//! One hand-written service rather than three `middleware::from_fn`s: each of those clones the
//! whole stack beneath it and allocates twice on every request, which on the gateway's proxy
//! path cost more than the work they wrap.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{BoxError, Layer, Service};

use crate::metrics as kit_metrics;
use crate::request_id::{self, X_REQUEST_ID};

/// See the module documentation.
#[derive(Clone, Copy)]
pub(super) struct OuterLayer;

impl<S> Layer<S> for OuterLayer {
    type Service = Outer<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Outer { inner }
    }
}

/// The service of [`OuterLayer`].
#[derive(Clone)]
pub(super) struct Outer<S> {
    inner: S,
}

impl<S, B> Service<Request> for Outer<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        // The request id: settled, stored on the request, scoped for the task, echoed.
        let id = request_id::choose(request.headers().get(&X_REQUEST_ID));
        let value =
            HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        request
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), value.clone());
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let answer = self.inner.call(request);
        Box::pin(request_id::scope(id, async move {
            let response = match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let mut response = super::problem_for_bare_errors(response.map(Body::new));
            kit_metrics::record(&method, route.as_ref(), response.status(), started);
            response.headers_mut().insert(X_REQUEST_ID.clone(), value);
            Ok(response)
        }))
    }
}
