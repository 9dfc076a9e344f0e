//! Media uploads through the real router, with the local storage backend in a temporary
//! directory: variants of the right pixel sizes, EXIF orientation, every refusal leaving
//! nothing behind, the admin API and `/media` serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod media_support;

use content_service::ContentService;
use media_support::{
    Part, TempDir, dimensions, jpeg, mp4, multipart, png, png_bomb, webp, with_exif_orientation,
};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use service_kit::Role;
use test_support::{TestApp, TestUser};

const CDN: &str = "https://cdn.test";

struct Harness {
    app: TestApp,
    dir: TempDir,
    admin: TestUser,
}

impl Harness {
    async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let dir = TempDir::new();
        let mut env = vec![("MEDIA_LOCAL_DIR", dir.as_str()), ("CDN_BASE_URL", CDN)];
        env.extend_from_slice(extra);
        let app = TestApp::spawn_with::<ContentService>(&env).await;
        Self {
            app,
            dir,
            admin: TestUser::new(Role::Admin),
        }
    }

    async fn upload_parts(&self, user: &TestUser, parts: &[Part<'_>]) -> reqwest::Response {
        let (content_type, body) = multipart(parts);
        self.app
            .request_as(Method::POST, "/v1/uploads", user)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn upload(&self, bytes: Vec<u8>, filename: &str, declared: &str) -> reqwest::Response {
        self.upload_parts(&self.admin, &[Part::file(bytes, filename, declared)])
            .await
    }

    async fn upload_ok(&self, bytes: Vec<u8>, filename: &str, declared: &str) -> Value {
        let response = self.upload(bytes, filename, declared).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The bytes stored for a CDN URL, read straight from the media directory.
    fn stored(&self, url: &str) -> Vec<u8> {
        let key = url.strip_prefix(&format!("{CDN}/")).expect("a CDN URL");
        std::fs::read(self.dir.0.join(key)).unwrap_or_else(|e| panic!("{key} is not stored: {e}"))
    }

    async fn rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM media_assets")
            .fetch_one(&self.app.pool().await)
            .await
            .unwrap()
    }

    async fn events(&self) -> Vec<Value> {
        sqlx::query_scalar(
            "SELECT envelope FROM outbox WHERE topic = 'media.uploaded' ORDER BY seq",
        )
        .fetch_all(&self.app.pool().await)
        .await
        .unwrap()
    }

    /// Nothing was stored: no row, no object, no event.
    async fn assert_nothing_stored(&self) {
        assert_eq!(self.rows().await, 0, "no media row");
        assert_eq!(self.dir.files(), Vec::<String>::new(), "no stored object");
        assert!(self.events().await.is_empty(), "no media.uploaded event");
    }

    async fn get_as(&self, path: &str) -> reqwest::Response {
        self.app
            .request_as(Method::GET, path, &self.admin)
            .send()
            .await
            .unwrap()
    }
}

async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

fn variant_sizes(h: &Harness, asset: &Value) -> Vec<(u32, u32)> {
    ["large", "medium", "thumb"]
        .iter()
        .map(|name| {
            let url = asset["variants"][name].as_str().unwrap();
            assert!(url.ends_with(&format!("-{name}.webp")), "{url}");
            let bytes = h.stored(url);
            assert!(
                bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP",
                "{name} is WebP"
            );
            dimensions(&bytes)
        })
        .collect()
}

#[tokio::test]
async fn a_4000_by_3000_jpeg_gets_webp_variants_of_1920_800_and_300_pixels() {
    let h = Harness::spawn().await;
    let original = jpeg(4000, 3000);

    let asset = h
        .upload_ok(original.clone(), "kitchen.jpg", "image/jpeg")
        .await;

    let id = asset["mediaId"].as_str().unwrap();
    let now = chrono::Utc::now();
    let expected_url = format!("{CDN}/media/{}/{id}.jpg", now.format("%Y/%m"));
    assert_eq!(asset["url"], expected_url.as_str());
    assert_eq!(asset["variants"]["original"], expected_url.as_str());
    assert_eq!(asset["kind"], "IMAGE");
    assert_eq!(asset["mimeType"], "image/jpeg");
    assert_eq!(asset["width"], 4000);
    assert_eq!(asset["height"], 3000);
    assert_eq!(asset["sizeBytes"], original.len());
    assert_eq!(asset["uploadedBy"], h.admin.id.to_string().as_str());
    assert_eq!(
        h.stored(&expected_url),
        original,
        "the original is stored as uploaded"
    );
    assert_eq!(
        variant_sizes(&h, &asset),
        vec![(1920, 1440), (800, 600), (300, 225)]
    );
    assert_eq!(h.rows().await, 1);
}

#[tokio::test]
async fn an_upload_emits_media_uploaded_once_through_the_outbox() {
    let h = Harness::spawn().await;
    let asset = h.upload_ok(png(640, 480), "a.png", "image/png").await;

    let events = h.events().await;
    assert_eq!(events.len(), 1);
    let payload = &events[0]["payload"];
    assert_eq!(payload["assetId"], asset["mediaId"]);
    assert_eq!(payload["contentType"], "image/png");
    assert_eq!(payload["width"], 640);
    assert_eq!(payload["height"], 480);
    assert_eq!(payload["uploadedBy"], h.admin.id.to_string().as_str());
    assert!(
        payload["storageKey"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}.png", asset["mediaId"].as_str().unwrap()))
    );
}

#[tokio::test]
async fn a_small_png_is_never_upscaled() {
    let h = Harness::spawn().await;
    let asset = h.upload_ok(png(200, 100), "logo.png", "image/png").await;
    assert_eq!(asset["mimeType"], "image/png");
    assert_eq!(variant_sizes(&h, &asset), vec![(200, 100); 3]);
}

#[tokio::test]
async fn a_portrait_webp_is_bounded_by_its_height() {
    let h = Harness::spawn().await;
    let asset = h
        .upload_ok(webp(900, 1200), "door.webp", "image/webp")
        .await;
    assert_eq!(asset["mimeType"], "image/webp");
    assert!(asset["url"].as_str().unwrap().ends_with(".webp"));
    assert_eq!(
        variant_sizes(&h, &asset),
        vec![(900, 1200), (600, 800), (225, 300)]
    );
}

#[tokio::test]
async fn exif_orientation_6_turns_a_landscape_jpeg_upright() {
    let h = Harness::spawn().await;
    let rotated = with_exif_orientation(&jpeg(400, 200), 6);

    let asset = h.upload_ok(rotated, "phone.jpg", "image/jpeg").await;

    assert_eq!(
        (asset["width"].clone(), asset["height"].clone()),
        (json!(200), json!(400))
    );
    assert_eq!(
        variant_sizes(&h, &asset),
        vec![(200, 400), (200, 400), (150, 300)]
    );
}

#[tokio::test]
async fn an_mp4_is_stored_as_it_is_with_its_track_size_and_no_variants() {
    let h = Harness::spawn().await;
    let video = mp4(1280, 720, 4096);

    let asset = h.upload_ok(video.clone(), "tour.mp4", "video/mp4").await;

    assert_eq!(asset["kind"], "VIDEO");
    assert_eq!(asset["mimeType"], "video/mp4");
    assert_eq!(asset["width"], 1280);
    assert_eq!(asset["height"], 720);
    assert!(asset["url"].as_str().unwrap().ends_with(".mp4"));
    assert_eq!(asset["variants"]["large"], Value::Null);
    assert_eq!(asset["variants"]["thumb"], Value::Null);
    assert_eq!(h.stored(asset["url"].as_str().unwrap()), video);
    assert_eq!(h.dir.files().len(), 1);
}

#[tokio::test]
async fn alt_text_is_kept_with_the_upload() {
    let h = Harness::spawn().await;
    let response = h
        .upload_parts(
            &h.admin,
            &[
                Part::text("altText", "  A white shaker kitchen  "),
                Part::file(png(50, 50), "a.png", "image/png"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let asset: Value = response.json().await.unwrap();
    assert_eq!(asset["altText"], "A white shaker kitchen");
}

#[tokio::test]
async fn a_gif_is_refused_with_415_and_nothing_is_stored() {
    let h = Harness::spawn().await;
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();

    let body = problem(
        h.upload(gif, "a.gif", "image/gif").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;

    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("/unsupported-media-type")
    );
    assert_eq!(
        body["accepted"],
        json!(["image/jpeg", "image/png", "image/webp", "video/mp4"])
    );
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_file_lying_about_its_type_is_refused_with_415() {
    let h = Harness::spawn().await;
    let script = b"<script>alert('x')</script> pretending to be a photo".to_vec();

    let response = h.upload(script, "kitchen.jpg", "image/jpeg").await;

    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_file_that_only_starts_like_a_jpeg_is_refused_with_422() {
    let h = Harness::spawn().await;
    let mut lying = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    lying.extend_from_slice(&[0x42; 5000]);

    let body = problem(
        h.upload(lying, "a.jpg", "image/jpeg").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("/unreadable-media")
    );
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_truncated_jpeg_png_or_mp4_is_refused_with_422() {
    let h = Harness::spawn().await;
    let whole_jpeg = jpeg(800, 600);
    let whole_png = png(800, 600);
    let whole_mp4 = mp4(640, 360, 2048);
    for (bytes, name, declared) in [
        (
            whole_jpeg[..whole_jpeg.len() * 2 / 3].to_vec(),
            "a.jpg",
            "image/jpeg",
        ),
        (
            whole_png[..whole_png.len() / 2].to_vec(),
            "a.png",
            "image/png",
        ),
        (
            whole_mp4[..whole_mp4.len() - 100].to_vec(),
            "a.mp4",
            "video/mp4",
        ),
    ] {
        let body = problem(
            h.upload(bytes, name, declared).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .ends_with("/unreadable-media"),
            "{name}: {body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("truncated"),
            "{name}: {body}"
        );
    }
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_with_422_without_decoding_it() {
    let h = Harness::spawn().await;
    let bomb = png_bomb(60_000);
    assert!(bomb.len() < 200, "a tiny file declaring 3.6 gigapixels");

    let body = problem(
        h.upload(bomb, "bomb.png", "image/png").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert!(
        body["type"].as_str().unwrap().ends_with("/image-too-large"),
        "{body}"
    );
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn an_image_over_the_pixel_limit_is_refused_with_422() {
    let h = Harness::spawn_with(&[("MEDIA_MAX_IMAGE_PIXELS", "1000000")]).await;
    let body = problem(
        h.upload(png(1200, 1000), "big.png", "image/png").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["type"].as_str().unwrap().ends_with("/image-too-large"));
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_file_over_10_mb_is_refused_with_413_and_nothing_is_stored() {
    let h = Harness::spawn().await;
    let mut big = mp4(640, 360, 0);
    big.resize(10 * 1024 * 1024 + 1, 7);

    let body = problem(
        h.upload(big, "big.mp4", "video/mp4").await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    assert!(
        body["type"].as_str().unwrap().ends_with("/file-too-large"),
        "{body}"
    );
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_body_far_over_the_limit_is_refused_with_413_before_it_is_read() {
    let h = Harness::spawn().await;
    let huge = vec![0u8; 12 * 1024 * 1024];
    problem(
        h.upload(huge, "huge.mp4", "video/mp4").await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_file_of_exactly_the_limit_is_accepted() {
    let h = Harness::spawn_with(&[("MEDIA_MAX_UPLOAD_BYTES", "5000")]).await;
    let mut video = mp4(640, 360, 0);
    // Grow the mdat box (last) so the file stays well-formed.
    let extra = 5000 - video.len();
    video.extend(std::iter::repeat_n(0u8, extra));
    let mdat_at = video.len() - 8 - extra;
    let size = u32::try_from(8 + extra).unwrap();
    video[mdat_at..mdat_at + 4].copy_from_slice(&size.to_be_bytes());
    assert_eq!(video.len(), 5000);
    h.upload_ok(video.clone(), "v.mp4", "video/mp4").await;

    video.push(0);
    problem(
        h.upload(video, "v.mp4", "video/mp4").await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[tokio::test]
async fn an_upload_without_a_file_or_with_bad_fields_is_a_422() {
    let h = Harness::spawn().await;
    let body = problem(
        h.upload_parts(&h.admin, &[Part::text("altText", "x")])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "file");

    let body = problem(
        h.upload_parts(
            &h.admin,
            &[
                Part::file(png(10, 10), "a.png", "image/png"),
                Part::text("altText", &"a".repeat(501)),
                Part::text("colour", "red"),
            ],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"altText") && fields.contains(&"colour"),
        "{body}"
    );

    // Far too long to be read at all: still a field error, not a 413.
    let body = problem(
        h.upload_parts(
            &h.admin,
            &[
                Part::text("altText", &"a".repeat(3000)),
                Part::file(png(10, 10), "a.png", "image/png"),
            ],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "altText");

    let body = problem(
        h.upload(Vec::new(), "empty.png", "image/png").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["message"], "is empty");
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_body_that_is_not_multipart_is_a_415() {
    let h = Harness::spawn().await;
    let response = h
        .app
        .request_as(Method::POST, "/v1/uploads", &h.admin)
        .json(&json!({"file": "aGVsbG8="}))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn only_administrators_upload() {
    let h = Harness::spawn().await;
    for role in [Role::Customer, Role::Consultant] {
        let user = TestUser::new(role);
        let response = h
            .upload_parts(&user, &[Part::file(png(10, 10), "a.png", "image/png")])
            .await;
        problem(response, StatusCode::FORBIDDEN).await;
    }
    let (content_type, body) = multipart(&[Part::file(png(10, 10), "a.png", "image/png")]);
    let anonymous = h
        .app
        .request(Method::POST, "/v1/uploads")
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let super_admin = TestUser::new(Role::SuperAdmin);
    let response = h
        .upload_parts(
            &super_admin,
            &[Part::file(png(10, 10), "a.png", "image/png")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn when_the_database_refuses_the_row_the_written_objects_are_removed() {
    let h = Harness::spawn().await;
    sqlx::query("ALTER TABLE media_assets ADD CONSTRAINT test_refuse_all CHECK (false) NOT VALID")
        .execute(&h.app.pool().await)
        .await
        .unwrap();

    let response = h.upload(jpeg(1000, 800), "a.jpg", "image/jpeg").await;

    problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn the_admin_list_pages_newest_first_and_filters_by_type() {
    let h = Harness::spawn().await;
    let first = h.upload_ok(png(20, 20), "a.png", "image/png").await;
    let video = h.upload_ok(mp4(320, 240, 100), "v.mp4", "video/mp4").await;
    let last = h.upload_ok(jpeg(30, 20), "b.jpg", "image/jpeg").await;

    let page: Value = h.get_as("/v1/media?pageSize=2").await.json().await.unwrap();
    assert_eq!(page["total"], 3);
    assert_eq!(page["pageSize"], 2);
    assert_eq!(page["data"][0]["mediaId"], last["mediaId"]);
    assert_eq!(page["data"][1]["mediaId"], video["mediaId"]);
    let page: Value = h
        .get_as("/v1/media?pageSize=2&page=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"][0]["mediaId"], first["mediaId"]);

    let videos: Value = h
        .get_as("/v1/media?filter[type]=VIDEO")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(videos["total"], 1);
    assert_eq!(videos["data"][0]["mediaId"], video["mediaId"]);
    let images: Value = h
        .get_as("/v1/media?filter%5Btype%5D=IMAGE")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(images["total"], 2);

    problem(
        h.get_as("/v1/media?filter[type]=GIF").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        h.get_as("/v1/media?filter[colour]=red").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let customer = TestUser::new(Role::Customer);
    let response = h
        .app
        .request_as(Method::GET, "/v1/media", &customer)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::FORBIDDEN).await;
}

async fn patch(h: &Harness, id: &str, body: Value) -> reqwest::Response {
    h.app
        .request_as(Method::PATCH, &format!("/v1/media/{id}"), &h.admin)
        .header(header::CONTENT_TYPE, "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn alt_text_is_set_and_cleared_with_a_merge_patch() {
    let h = Harness::spawn().await;
    let asset = h.upload_ok(png(20, 20), "a.png", "image/png").await;
    let id = asset["mediaId"].as_str().unwrap();

    let response = patch(&h, id, json!({"altText": "Oak bedroom"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["altText"], "Oak bedroom");

    problem(
        patch(&h, id, json!({"altText": "x".repeat(501)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        patch(&h, id, json!({"caption": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let unchanged: Value = h
        .get_as(&format!("/v1/media/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["altText"], "Oak bedroom");

    let cleared: Value = patch(&h, id, json!({"altText": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["altText"], Value::Null);
    let untouched: Value = patch(&h, id, json!({})).await.json().await.unwrap();
    assert_eq!(untouched["altText"], Value::Null);

    let missing = uuid::Uuid::now_v7();
    problem(
        patch(&h, &missing.to_string(), json!({"altText": "x"})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn delete(h: &Harness, id: &str) -> reqwest::Response {
    h.app
        .request_as(Method::DELETE, &format!("/v1/media/{id}"), &h.admin)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn deleting_an_asset_removes_its_objects_and_hides_it() {
    let h = Harness::spawn().await;
    let keep = h.upload_ok(png(20, 20), "keep.png", "image/png").await;
    let asset = h.upload_ok(jpeg(2000, 1000), "a.jpg", "image/jpeg").await;
    let id = asset["mediaId"].as_str().unwrap();
    assert_eq!(h.dir.files().len(), 8);

    let response = delete(&h, id).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let left = h.dir.files();
    assert_eq!(
        left.len(),
        4,
        "only the other asset's objects remain: {left:?}"
    );
    assert!(
        left.iter()
            .all(|f| f.contains(keep["mediaId"].as_str().unwrap()))
    );
    problem(
        h.get_as(&format!("/v1/media/{id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let list: Value = h.get_as("/v1/media").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
    let path = asset["variants"]["thumb"]
        .as_str()
        .unwrap()
        .strip_prefix(CDN)
        .unwrap()
        .to_owned();
    problem(h.app.get(&path).await, StatusCode::NOT_FOUND).await;
    problem(delete(&h, id).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn an_asset_used_as_a_blog_cover_cannot_be_deleted() {
    let h = Harness::spawn().await;
    let asset = h.upload_ok(png(20, 20), "cover.png", "image/png").await;
    let id: uuid::Uuid = asset["mediaId"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "INSERT INTO blog_posts (id, slug, title, cover_media_id) VALUES ($1, 'oak', 'Oak', $2)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(id)
    .execute(&h.app.pool().await)
    .await
    .unwrap();

    let body = problem(delete(&h, &id.to_string()).await, StatusCode::CONFLICT).await;

    assert!(body["type"].as_str().unwrap().ends_with("/media-in-use"));
    assert_eq!(body["usedBy"], json!(["blog post"]));
    assert_eq!(h.dir.files().len(), 4, "nothing removed");
}

#[tokio::test]
async fn an_asset_whose_url_is_in_a_project_gallery_cannot_be_deleted() {
    let h = Harness::spawn().await;
    let asset = h.upload_ok(png(20, 20), "p.png", "image/png").await;
    let id = asset["mediaId"].as_str().unwrap();
    sqlx::query(
        "INSERT INTO projects (id, title, category, images) VALUES ($1, 'Leeds', 'KITCHEN', $2)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(json!([{"url": asset["variants"]["large"]}]))
    .execute(&h.app.pool().await)
    .await
    .unwrap();

    let body = problem(delete(&h, id).await, StatusCode::CONFLICT).await;
    assert_eq!(body["usedBy"], json!(["project"]));
}

#[tokio::test]
async fn stored_media_are_served_with_their_type_and_cache_headers() {
    let h = Harness::spawn().await;
    let asset = h.upload_ok(png(640, 480), "a.png", "image/png").await;
    let thumb_url = asset["variants"]["thumb"].as_str().unwrap();
    let path = thumb_url.strip_prefix(CDN).unwrap();

    // Public: an anonymous client through the gateway.
    let response = h.app.get(path).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/webp");
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        response.headers()[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(dimensions(&bytes), (300, 225));

    let original = h
        .app
        .get(asset["url"].as_str().unwrap().strip_prefix(CDN).unwrap())
        .await;
    assert_eq!(original.headers()[header::CONTENT_TYPE], "image/png");

    let revalidated = h
        .app
        .request(Method::GET, path)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    let ranged = h
        .app
        .request(Method::GET, path)
        .header(header::RANGE, "bytes=0-11")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        ranged.headers()[header::CONTENT_RANGE],
        format!("bytes 0-11/{}", bytes.len()).as_str()
    );
    assert_eq!(ranged.bytes().await.unwrap(), bytes.slice(0..12));
}

#[tokio::test]
async fn paths_outside_the_media_directory_are_not_found() {
    let h = Harness::spawn().await;
    std::fs::create_dir_all(&h.dir.0).unwrap();
    std::fs::write(h.dir.0.join("secret.txt"), "secret").unwrap();
    for path in [
        "/media/../secret.txt",
        "/media/..%2Fsecret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/2026/%2e%2e/%2e%2e/secret.txt",
        "/media//etc/passwd",
        "/media/.hidden",
        "/media/2026/12/none.webp",
    ] {
        let response = h.app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("secret\""), "{path}");
    }
}
