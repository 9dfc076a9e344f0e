//! The S3 storage backend against a local S3-compatible server (moto, which `cargo xtask test`
//! starts on 127.0.0.1:4566; `AWS_ENDPOINT_URL` overrides), one bucket per test: the object
//! contract, and the whole upload pipeline storing its original and variants in the bucket; and
//! the CDN invalidator against the same server's CloudFront.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod media_support;

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;
use content_service::ContentService;
use content_service::media::{Media, MediaSettings, Upload, store_upload};
use content_service::storage::s3::{S3Settings, S3Store};
use content_service::storage::{IMMUTABLE_CACHE_CONTROL, ObjectKey, ObjectStore, Storage};
use media_support::{dimensions, jpeg};
use service_kit::event_bus::SqsCredentials;
use service_kit::event_bus::aws::AwsSettings;
use service_kit::{CommonConfig, Env, Service};
use std::sync::Arc;
use test_support::TestDb;

const REGION: &str = "eu-west-2";

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".to_owned())
}

fn aws() -> AwsSettings {
    AwsSettings {
        region: REGION.to_owned(),
        endpoint_url: Some(endpoint()),
        credentials: Some(SqsCredentials {
            access_key_id: "test".to_owned(),
            secret_access_key: "test".to_owned(),
        }),
    }
}

/// A store on a new, empty bucket of its own.
async fn fresh_bucket() -> S3Store {
    let bucket = format!("content-test-{}", test_support::unique_suffix());
    let store = S3Store::new(&S3Settings {
        aws: aws(),
        bucket: bucket.clone(),
    })
    .await;
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a bucket on {} (is moto running? cargo xtask test starts it): {}",
                endpoint(),
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    store
}

async fn keys_in(store: &S3Store) -> Vec<String> {
    let listed = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

fn key(raw: &str) -> ObjectKey {
    ObjectKey::parse(raw).unwrap()
}

#[tokio::test]
async fn an_object_put_in_s3_reads_back_with_its_type_and_cache_policy() {
    let store = fresh_bucket().await;
    let k = key("media/2026/12/a-thumb.webp");

    store
        .put(&k, Bytes::from_static(b"RIFF....WEBPdata"), "image/webp")
        .await
        .unwrap();

    let object = store.get(&k).await.unwrap().expect("stored");
    assert_eq!(&object.bytes[..], b"RIFF....WEBPdata");
    assert_eq!(object.content_type, "image/webp");
    let head = store
        .client()
        .head_object()
        .bucket(store.bucket())
        .key(k.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(head.cache_control(), Some(IMMUTABLE_CACHE_CONTROL));
    assert_eq!(head.content_length(), Some(16));
}

#[tokio::test]
async fn a_missing_s3_object_is_none_and_deleting_is_idempotent() {
    let store = fresh_bucket().await;
    let k = key("media/2026/12/b.jpg");
    assert!(store.get(&k).await.unwrap().is_none());

    store
        .put(&k, Bytes::from_static(b"\xFF\xD8\xFF"), "image/jpeg")
        .await
        .unwrap();
    store.delete(&k).await.unwrap();

    assert!(store.get(&k).await.unwrap().is_none());
    assert!(keys_in(&store).await.is_empty());
    store.delete(&k).await.unwrap();
}

#[tokio::test]
async fn the_readiness_check_sees_a_missing_bucket() {
    let store = fresh_bucket().await;
    assert_eq!(store.check().await, Ok(()));
    let missing = S3Store::new(&S3Settings {
        aws: aws(),
        bucket: format!("content-missing-{}", test_support::unique_suffix()),
    })
    .await;
    assert!(missing.check().await.is_err());
}

/// The media settings as configured in development, over `store`, and a migrated database.
async fn media_over(store: S3Store) -> (Media, TestDb, sqlx::PgPool) {
    let env = Env::from_pairs([("CDN_BASE_URL", "https://cdn.test")]);
    let common = CommonConfig::from_env(ContentService::SPEC, &env).unwrap();
    let settings = MediaSettings::from_env(&env, &common).unwrap();
    let storage: Storage = Arc::new(store);
    let db = TestDb::create("content_s3").await;
    let pool = db.pool().await;
    ContentService::migrator()
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    (Media::new(storage, settings), db, pool)
}

#[tokio::test]
async fn an_upload_stores_its_original_and_three_variants_in_the_bucket() {
    let store = fresh_bucket().await;
    let (media, _db, pool) = media_over(store.clone()).await;
    let owner = uuid::Uuid::now_v7();

    let asset = store_upload(
        &media,
        &pool,
        Upload {
            bytes: Bytes::from(jpeg(2400, 1800)),
            alt_text: Some("Walnut kitchen".to_owned()),
            owner,
        },
    )
    .await
    .unwrap();

    let id = asset.media_id.to_string();
    let keys = keys_in(&store).await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.starts_with("media/") && k.contains(&id))
    );
    let mut sizes = Vec::new();
    for name in ["large", "medium", "thumb"] {
        let url = match name {
            "large" => asset.variants.large.clone(),
            "medium" => asset.variants.medium.clone(),
            _ => asset.variants.thumb.clone(),
        }
        .expect("images have every variant");
        let key = url.strip_prefix("https://cdn.test/").unwrap();
        let object = store
            .get(&ObjectKey::parse(key).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(object.content_type, "image/webp");
        sizes.push(dimensions(&object.bytes));
    }
    assert_eq!(sizes, vec![(1920, 1440), (800, 600), (300, 225)]);
    let original = store
        .get(&ObjectKey::parse(&asset.key).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.content_type, "image/jpeg");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM media_assets WHERE id = $1")
        .bind(asset.media_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_refused_upload_leaves_the_bucket_empty() {
    let store = fresh_bucket().await;
    let (media, _db, pool) = media_over(store.clone()).await;
    let whole = jpeg(600, 400);

    let result = store_upload(
        &media,
        &pool,
        Upload {
            bytes: Bytes::from(whole[..whole.len() / 2].to_vec()),
            alt_text: None,
            owner: uuid::Uuid::now_v7(),
        },
    )
    .await;

    assert!(result.is_err());
    assert!(keys_in(&store).await.is_empty());
}

#[tokio::test]
async fn when_the_database_refuses_the_row_the_bucket_objects_are_removed() {
    let store = fresh_bucket().await;
    let (media, _db, pool) = media_over(store.clone()).await;
    sqlx::query("ALTER TABLE media_assets ADD CONSTRAINT test_refuse_all CHECK (false) NOT VALID")
        .execute(&pool)
        .await
        .unwrap();

    let result = store_upload(
        &media,
        &pool,
        Upload {
            bytes: Bytes::from(jpeg(600, 400)),
            alt_text: None,
            owner: uuid::Uuid::now_v7(),
        },
    )
    .await;

    assert!(result.is_err());
    assert!(
        keys_in(&store).await.is_empty(),
        "the written objects were removed"
    );
}

/// A CloudFront distribution on the local server (with the legacy cache settings the local
/// server understands).
#[allow(deprecated)]
async fn distribution(client: &aws_sdk_cloudfront::Client) -> String {
    use aws_sdk_cloudfront::types::{
        CookiePreference, DefaultCacheBehavior, DistributionConfig, ForwardedValues, ItemSelection,
        Origin, Origins, S3OriginConfig, TrustedSigners, ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("media")
        .domain_name("lomash-media.s3.amazonaws.com")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let behaviour = DefaultCacheBehavior::builder()
        .target_origin_id("media")
        .viewer_protocol_policy(ViewerProtocolPolicy::AllowAll)
        .min_ttl(0)
        .forwarded_values(
            ForwardedValues::builder()
                .query_string(false)
                .cookies(
                    CookiePreference::builder()
                        .forward(ItemSelection::None)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .trusted_signers(
            TrustedSigners::builder()
                .enabled(false)
                .quantity(0)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(test_support::unique_suffix())
        .comment("content tests")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(behaviour)
        .build()
        .unwrap();
    let created = client
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap();
    created.distribution().unwrap().id().to_owned()
}

#[tokio::test]
async fn the_cdn_invalidator_creates_one_cloudfront_invalidation_for_the_paths() {
    use content_service::cdn::{Invalidator, Outcome};
    let shared = service_kit::event_bus::aws::sdk_config(&AwsSettings {
        region: "us-east-1".to_owned(),
        ..aws()
    })
    .await;
    let client = aws_sdk_cloudfront::Client::new(&shared);
    let distribution_id = distribution(&client).await;
    let cdn = Invalidator::new(
        Some(distribution_id.clone()),
        &aws(),
        std::time::Duration::from_secs(10),
    )
    .await;

    let outcome = cdn
        .invalidate(["media/2026/12/a.jpg", "media/2026/12/a-thumb.webp"])
        .await;

    let Outcome::Created(ids) = outcome else {
        panic!("expected an invalidation, got {outcome:?}");
    };
    assert_eq!(ids.len(), 1);
    let invalidation = client
        .get_invalidation()
        .distribution_id(&distribution_id)
        .id(&ids[0])
        .send()
        .await
        .unwrap();
    let paths = invalidation
        .invalidation()
        .unwrap()
        .invalidation_batch()
        .unwrap()
        .paths()
        .unwrap();
    assert_eq!(
        paths.items(),
        ["/media/2026/12/a-thumb.webp", "/media/2026/12/a.jpg"]
    );
}

#[tokio::test]
async fn an_invalidation_of_an_unknown_distribution_fails_quietly() {
    use content_service::cdn::{Invalidator, Outcome};
    let cdn = Invalidator::new(
        Some("EDOESNOTEXIST".to_owned()),
        &aws(),
        std::time::Duration::from_secs(10),
    )
    .await;
    assert_eq!(cdn.invalidate(["/media/a.jpg"]).await, Outcome::Failed);
}
