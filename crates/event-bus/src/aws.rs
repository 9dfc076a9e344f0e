//! The AWS SDK setup shared by every AWS client of the platform (SQS here, S3 and CloudFront in
//! the content service), so each builds its client the same way.
//!
//! The SDK crates are built without their default features (which pull two HTTP/TLS stacks), so
//! the HTTP client is given explicitly: hyper with rustls on ring. `AWS_ENDPOINT_URL` points the
//! SDK at a local AWS-compatible server (moto) in development and tests.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use aws_smithy_http_client::tls;

use crate::SqsCredentials;

/// Where and as whom an AWS client talks.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// The AWS region, e.g. `eu-west-2`.
    pub region: String,
    /// Endpoint override (a local AWS-compatible server); `None` uses AWS.
    pub endpoint_url: Option<String>,
    /// Fixed credentials (local servers, tests); `None` uses the AWS default chain
    /// (environment, profile, web identity, instance metadata).
    pub credentials: Option<SqsCredentials>,
}

/// The shared SDK configuration for `settings`: rustls (ring) HTTPS client, region, optional
/// endpoint override and fixed credentials. Build a service client from it with
/// `aws_sdk_xxx::Client::new(&config)` or `aws_sdk_xxx::config::Builder::from(&config)`.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .region(Region::new(settings.region.clone()));
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(credentials) = &settings.credentials {
        loader = loader.credentials_provider(Credentials::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            None,
            None,
            "lomash config",
        ));
    }
    loader.load().await
}
