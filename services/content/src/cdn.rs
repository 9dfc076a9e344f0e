//! CDN invalidation after media changes and publishes.
//!
//! [`Invalidator::invalidate`] asks CloudFront (`CreateInvalidation`) to drop the given paths
//! when `CLOUDFRONT_DISTRIBUTION_ID` is configured, and only logs them otherwise (local
//! development, where the gateway serves media uncached). It never fails its caller: a CDN that
//! cannot be reached must not undo a publish or a delete that has already committed. Failures are
//! logged and counted in `content_cdn_invalidations_total{outcome="failed"}`; stale copies then
//! expire with their cache lifetime.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::error::DisplayErrorContext;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use service_kit::event_bus::aws::{AwsSettings, sdk_config};
use uuid::Uuid;

/// CloudFront accepts at most this many paths in one invalidation.
const MAX_PATHS_PER_INVALIDATION: usize = 3000;

/// Invalidates CDN paths, or logs them when no CDN is configured. Cheap to clone.
#[derive(Clone)]
pub struct Invalidator {
    inner: Arc<Backend>,
}

enum Backend {
    Log,
    CloudFront {
        client: Client,
        distribution_id: String,
        timeout: Duration,
    },
}

/// Which paths an invalidation covers and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do (no paths).
    Nothing,
    /// No CDN configured: the paths were logged.
    Logged(Vec<String>),
    /// CloudFront accepted invalidations with these ids.
    Created(Vec<String>),
    /// CloudFront refused or could not be reached (logged and counted).
    Failed,
}

impl Invalidator {
    /// Logs paths only.
    pub fn log_only() -> Self {
        Self {
            inner: Arc::new(Backend::Log),
        }
    }

    /// CloudFront when `distribution_id` is set, otherwise log only. CloudFront is a global
    /// service signed in `us-east-1`, whatever region the rest of the platform uses.
    pub async fn new(
        distribution_id: Option<String>,
        aws: &AwsSettings,
        timeout: Duration,
    ) -> Self {
        let Some(distribution_id) = distribution_id else {
            return Self::log_only();
        };
        let shared = sdk_config(&AwsSettings {
            region: "us-east-1".to_owned(),
            ..aws.clone()
        })
        .await;
        Self {
            inner: Arc::new(Backend::CloudFront {
                client: Client::new(&shared),
                distribution_id,
                timeout,
            }),
        }
    }

    /// Whether a CDN is configured.
    pub fn is_configured(&self) -> bool {
        matches!(*self.inner, Backend::CloudFront { .. })
    }

    /// Invalidates `paths` (each made absolute: `media/a.jpg` → `/media/a.jpg`; `*` wildcards
    /// as CloudFront allows). Never fails: errors are logged and counted.
    pub async fn invalidate<I, S>(&self, paths: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut paths: Vec<String> = paths
            .into_iter()
            .filter_map(|p| normalise(p.as_ref()))
            .collect();
        paths.sort();
        paths.dedup();
        if paths.is_empty() {
            return Outcome::Nothing;
        }
        match &*self.inner {
            Backend::Log => {
                metrics::counter!("content_cdn_invalidations_total", "outcome" => "logged")
                    .increment(1);
                tracing::info!(?paths, "no CDN configured; would invalidate");
                Outcome::Logged(paths)
            }
            Backend::CloudFront {
                client,
                distribution_id,
                timeout,
            } => {
                let mut ids = Vec::new();
                for chunk in paths.chunks(MAX_PATHS_PER_INVALIDATION) {
                    match create(client, distribution_id, chunk, *timeout).await {
                        Ok(id) => ids.push(id),
                        Err(error) => {
                            metrics::counter!("content_cdn_invalidations_total", "outcome" => "failed")
                                .increment(1);
                            tracing::error!(%error, distribution = %distribution_id, paths = ?chunk,
                                "CDN invalidation failed; stale copies expire with their cache lifetime");
                            return Outcome::Failed;
                        }
                    }
                }
                metrics::counter!("content_cdn_invalidations_total", "outcome" => "created")
                    .increment(1);
                tracing::info!(?paths, invalidations = ?ids, "CDN invalidation created");
                Outcome::Created(ids)
            }
        }
    }

    /// [`invalidate`](Self::invalidate) in a background task, for callers that must not wait.
    pub fn invalidate_in_background(&self, paths: Vec<String>) {
        let this = self.clone();
        tokio::spawn(async move {
            this.invalidate(paths).await;
        });
    }
}

/// An absolute CloudFront path, or `None` for a blank one.
fn normalise(path: &str) -> Option<String> {
    let path = path.trim();
    if path.is_empty() {
        return None;
    }
    Some(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

async fn create(
    client: &Client,
    distribution_id: &str,
    paths: &[String],
    timeout: Duration,
) -> Result<String, String> {
    let quantity = i32::try_from(paths.len()).map_err(|e| e.to_string())?;
    let batch = InvalidationBatch::builder()
        .paths(
            Paths::builder()
                .quantity(quantity)
                .set_items(Some(paths.to_vec()))
                .build()
                .map_err(|e| e.to_string())?,
        )
        // Unique per request, so a retried call is not mistaken for this one.
        .caller_reference(Uuid::now_v7().to_string())
        .build()
        .map_err(|e| e.to_string())?;
    let call = client
        .create_invalidation()
        .distribution_id(distribution_id)
        .invalidation_batch(batch)
        .send();
    let output = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    Ok(output
        .invalidation()
        .map(|i| i.id().to_owned())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn without_a_distribution_paths_are_only_logged_and_made_absolute() {
        let cdn = Invalidator::new(None, &AwsSettings::default(), Duration::from_secs(1)).await;
        assert!(!cdn.is_configured());
        let outcome = cdn
            .invalidate([
                "media/2026/12/a.jpg",
                "/v1/blog*",
                "media/2026/12/a.jpg",
                "  ",
            ])
            .await;
        assert_eq!(
            outcome,
            Outcome::Logged(vec![
                "/media/2026/12/a.jpg".to_owned(),
                "/v1/blog*".to_owned()
            ])
        );
    }

    #[tokio::test]
    async fn no_paths_is_nothing_to_do() {
        let cdn = Invalidator::log_only();
        assert_eq!(cdn.invalidate(Vec::<String>::new()).await, Outcome::Nothing);
    }

    #[tokio::test]
    async fn an_unreachable_cloudfront_fails_quietly() {
        // Nothing listens on port 9 of loopback: the call fails, and the caller only gets Failed.
        let aws = AwsSettings {
            region: "eu-west-2".to_owned(),
            endpoint_url: Some("http://127.0.0.1:9".to_owned()),
            credentials: Some(service_kit::event_bus::SqsCredentials {
                access_key_id: "test".to_owned(),
                secret_access_key: "test".to_owned(),
            }),
        };
        let cdn = Invalidator::new(Some("E123".to_owned()), &aws, Duration::from_secs(5)).await;
        assert!(cdn.is_configured());
        assert_eq!(cdn.invalidate(["media/a.jpg"]).await, Outcome::Failed);
    }
}
