//! Every flow of seed 001 ("Data Flow") end to end: the nine services started together as
//! `cargo xtask up` starts them (on free ports, with their own databases and one private broker
//! namespace), driven through the gateway only, as a client would. What a client cannot see (an
//! email) is read where the local email provider keeps it.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use e2e_tests::{Platform, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::problem::code as problem_code;

/// Asserts `response` has `status` and returns its JSON body (printing it when it does not).
async fn expect(response: reqwest::Response, status: u16) -> Value {
    let got = response.status();
    let request_id = response.headers().get("x-request-id").cloned();
    let text = response.text().await.unwrap();
    assert_eq!(got.as_u16(), status, "{text}");
    assert!(request_id.is_some(), "every response carries X-Request-Id");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Flow 1: register → verification email → verify → login → me.
#[tokio::test]
async fn flow_1_register_verify_login_me() {
    let platform = Platform::start().await;
    let email = "jane.doe@example.com";

    let registered = expect(platform.register(email).await, 201).await;
    assert_eq!(registered["email"], email);
    let user_id = registered["userId"].as_str().unwrap().to_owned();

    // The code arrives by email (auth → auth.otp_requested → notification → the provider).
    let code = platform.verification_code(email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = platform
        .post(
            "/v1/auth/verify-email",
            None,
            &json!({"email": email, "code": wrong}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    expect(
        platform
            .post(
                "/v1/auth/verify-email",
                None,
                &json!({"email": email, "code": code}),
            )
            .await,
        200,
    )
    .await;

    // The same address again gets the very same answer (no account enumeration), but a fresh
    // random id, and creates nothing.
    let again = expect(platform.register(email).await, 201).await;
    assert_ne!(again["userId"], user_id.as_str());

    let token = platform.login(email).await;
    let me = expect(platform.get("/v1/auth/me", Some(&token)).await, 200).await;
    assert_eq!(me["id"], user_id.as_str());
    assert_eq!(me["email"], email);
    assert_eq!(me["emailVerified"], true);
    assert_eq!(me["role"], "CUSTOMER");
    // Without the token, the gateway refuses.
    assert_eq!(
        platform.get("/v1/auth/me", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A home-measurement consultant covering SW, with slots every day 09:00–13:00, set up by an
/// administrator through the admin API; returns the first bookable slot's id.
async fn home_slot(platform: &Platform, admin: &str) -> String {
    let consultant = expect(
        platform
            .post(
                "/v1/admin/consultants",
                Some(admin),
                &json!({"userId": uuid::Uuid::now_v7(), "name": "Amelia Hart",
                        "specialisation": "BOTH", "coverage": ["SW"]}),
            )
            .await,
        201,
    )
    .await;
    let id = consultant["id"].as_str().unwrap();
    for weekday in 1..=7 {
        expect(
            platform
                .post(
                    &format!("/v1/admin/consultants/{id}/rules"),
                    Some(admin),
                    &json!({"weekday": weekday, "startsAt": "09:00", "endsAt": "13:00",
                            "appointmentType": "HOME_MEASUREMENT"}),
                )
                .await,
            201,
        )
        .await;
    }
    let from = Utc::now().date_naive();
    let to = from + Duration::days(14);
    let availability = expect(
        platform
            .get(
                &format!(
                    "/v1/availability?type=HOME_MEASUREMENT&postcode=SW4%200AB&from={from}&to={to}"
                ),
                None,
            )
            .await,
        200,
    )
    .await;
    availability["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["slots"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .next()
        .expect("a bookable slot")
}

fn booking(slot: &str, email: &str) -> Value {
    json!({
        "type": "HOME_MEASUREMENT",
        "forKitchen": true,
        "forBedroom": true,
        "firstName": "Jane",
        "lastName": "Doe",
        "email": email,
        "phone": "07700 900123",
        "postcode": "SW4 0AB",
        "address": "1 Acre Lane, London",
        "slotId": slot,
    })
}

/// Flow 3: a HOME_MEASUREMENT for kitchen and bedroom → 201 with a reference → the customer's
/// acknowledgement and both teams' alerts are sent.
#[tokio::test]
async fn flow_3_booking_for_kitchen_and_bedroom_alerts_both_teams() {
    let platform = Platform::start().await;
    let admin = platform.admin("ops@lomashwood.co.uk").await;
    let slot = home_slot(&platform, &admin).await;
    let email = "sam.booker@example.com";
    let (token, _) = platform.customer(email).await;

    // Invalid input is refused with a problem naming the field, and books nothing.
    let mut bad = booking(&slot, email);
    bad["postcode"] = json!("not a postcode");
    let refused = expect(
        platform.post("/v1/appointments", Some(&token), &bad).await,
        422,
    )
    .await;
    assert_eq!(problem_code(&refused), "validation-failed");

    let booked = expect(
        platform
            .post("/v1/appointments", Some(&token), &booking(&slot, email))
            .await,
        201,
    )
    .await;
    let reference = booked["referenceCode"].as_str().unwrap().to_owned();
    assert!(reference.starts_with("BK-"), "{reference}");
    assert_eq!(booked["status"], "PENDING");
    // The slot is taken now.
    let twice = platform
        .post("/v1/appointments", Some(&token), &booking(&slot, email))
        .await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);

    let acknowledgement = platform.email(email, &reference).await;
    assert!(acknowledgement.text.contains(&reference));
    let kitchen_team = platform.env("notification").get("KITCHEN_TEAM_EMAIL");
    let bedroom_team = platform.env("notification").get("BEDROOM_TEAM_EMAIL");
    for team in [
        kitchen_team.map_or("kitchens@lomashwood.co.uk", String::as_str),
        bedroom_team.map_or("bedrooms@lomashwood.co.uk", String::as_str),
    ] {
        let alert = platform.email(team, "Kitchen and bedroom booking").await;
        assert!(alert.subject.contains(&reference), "{}", alert.subject);
        assert!(alert.text.contains(email));
    }
    // Exactly one acknowledgement and one alert per team (the second attempt booked nothing).
    assert_eq!(
        platform.emails(email).await.len(),
        2,
        "code + acknowledgement"
    );

    let mine = expect(
        platform.get("/v1/appointments/mine", Some(&token)).await,
        200,
    )
    .await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1), "{mine}");
}

/// A published kitchen priced `pence`, with `stock` units, created by an administrator.
async fn product(platform: &Platform, admin: &str, title: &str, pence: i64, stock: i64) -> String {
    let product = expect(
        platform
            .post(
                "/v1/products",
                Some(admin),
                &json!({"title": title, "category": "KITCHEN", "status": "PUBLISHED",
                        "price": {"amount": pence, "currency": "GBP"}}),
            )
            .await,
        201,
    )
    .await;
    let id = product["id"].as_str().unwrap().to_owned();
    expect(
        platform
            .post(
                &format!("/v1/products/{id}/inventory/adjustments"),
                Some(admin),
                &json!({"delta": stock, "reason": "RESTOCK"}),
            )
            .await,
        200,
    )
    .await;
    id
}

/// Flow 4: order → PaymentIntent → Stripe's signed `payment_intent.succeeded` → the order is
/// CONFIRMED, its invoice PDF downloads, loyalty points are credited, a receipt is emailed.
#[tokio::test]
async fn flow_4_order_paid_by_webhook_is_confirmed_invoiced_rewarded_and_receipted() {
    let platform = Platform::start().await;
    let admin = platform.admin("ops@lomashwood.co.uk").await;
    let kitchen = product(&platform, &admin, "Handleless Oak Kitchen", 129_900, 3).await;
    let email = "asha.patel@example.com";
    let (token, _) = platform.customer(email).await;

    let placed = expect(
        platform
            .request(Method::POST, "/v1/orders", Some(&token))
            .header("Idempotency-Key", "e2e-order-1")
            .json(&json!({
                "items": [{"productId": kitchen, "quantity": 1}],
                "email": email,
                "shippingAddress": {"fullName": "Asha Patel", "line1": "1 Oak Lane",
                                    "city": "Leeds", "postcode": "LS1 4AP", "country": "GB"},
                "shippingMethod": "STANDARD"
            }))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let order_id = placed["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["status"], "PENDING");

    let intent = expect(
        platform
            .request(Method::POST, "/v1/payments/create-intent", Some(&token))
            .header("Idempotency-Key", "e2e-pay-1")
            .json(&json!({"orderId": order_id}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(intent["amount"], placed["total"]);
    let amount = intent["amount"].as_i64().unwrap();
    let intent_id = intent["paymentIntentId"].as_str().unwrap().to_owned();

    // The customer pays at Stripe; Stripe calls the webhook through the gateway, signed. A
    // forgery (signed with another secret) is refused first and changes nothing.
    let paid = platform.stripe.succeed_intent(&intent_id).unwrap();
    let event = platform.stripe.event("payment_intent.succeeded", paid);
    let forged = stripe_fake::sign(&event, "whsec_not_the_configured_one");
    let refused = platform
        .request(Method::POST, "/v1/webhooks/stripe", None)
        .header("Stripe-Signature", forged.signature)
        .header("content-type", "application/json")
        .body(forged.body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let pending = expect(
        platform
            .get(&format!("/v1/orders/{order_id}"), Some(&token))
            .await,
        200,
    )
    .await;
    assert_eq!(pending["status"], "PENDING");

    let delivered = stripe_fake::webhook::deliver(
        &platform.client,
        &platform.url("/v1/webhooks/stripe"),
        e2e_tests::WEBHOOK_SECRET,
        &event,
    )
    .await
    .unwrap();
    assert_eq!(delivered, StatusCode::OK);

    let order = expect(
        platform
            .get(&format!("/v1/orders/{order_id}"), Some(&token))
            .await,
        200,
    )
    .await;
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["paymentStatus"], "PAID");

    let invoice = expect(
        platform
            .get(&format!("/v1/orders/{order_id}/invoice"), Some(&token))
            .await,
        200,
    )
    .await;
    assert_eq!(invoice["total"], amount);
    let number = invoice["invoiceNumber"].as_str().unwrap().to_owned();
    let pdf = platform
        .get(&format!("/v1/invoices/{number}.pdf"), Some(&token))
        .await;
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    // Another customer cannot download it.
    let (stranger, _) = platform.customer("stranger@example.com").await;
    assert_eq!(
        platform
            .get(&format!("/v1/invoices/{number}.pdf"), Some(&stranger))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // customer credits points for payment.succeeded (one per whole pound by default).
    let balance = eventually("loyalty points for the payment", || async {
        let account = expect(platform.get("/v1/loyalty", Some(&token)).await, 200).await;
        let balance = account["balance"].as_i64().unwrap();
        (balance > 0).then_some((balance, account["pointsPerPound"].as_i64().unwrap()))
    })
    .await;
    assert_eq!(balance.0, amount / 100 * balance.1);

    let receipt = platform.email(email, "Your Lomash Wood receipt").await;
    assert!(receipt.subject.contains(&number), "{}", receipt.subject);
    // The same event again (Stripe retries) changes nothing: still one receipt, same points.
    let again = stripe_fake::webhook::deliver(
        &platform.client,
        &platform.url("/v1/webhooks/stripe"),
        e2e_tests::WEBHOOK_SECRET,
        &event,
    )
    .await
    .unwrap();
    assert_eq!(again, StatusCode::OK);
    let account = expect(platform.get("/v1/loyalty", Some(&token)).await, 200).await;
    assert_eq!(account["balance"], balance.0);
    let receipts = platform
        .emails(email)
        .await
        .into_iter()
        .filter(|e| e.subject.contains("receipt"))
        .count();
    assert_eq!(receipts, 1);
}

/// A taxonomy entry created by an administrator; returns its id.
async fn term(platform: &Platform, admin: &str, collection: &str, body: Value) -> String {
    let created = expect(
        platform
            .post(&format!("/v1/{collection}"), Some(admin), &body)
            .await,
        201,
    )
    .await;
    created["id"].as_str().unwrap().to_owned()
}

/// Flow 2: category + colour + style filters, a sort, and `nextCursor` followed to the end.
#[tokio::test]
async fn flow_2_browse_filters_sort_and_infinite_scroll() {
    let platform = Platform::start().await;
    let admin = platform.admin("ops@lomashwood.co.uk").await;
    let white = term(
        &platform,
        &admin,
        "colours",
        json!({"name": "White", "hexCode": "#FFFFFF"}),
    )
    .await;
    let grey = term(
        &platform,
        &admin,
        "colours",
        json!({"name": "Grey", "hexCode": "#808080"}),
    )
    .await;
    let shaker = term(
        &platform,
        &admin,
        "styles",
        json!({"code": "SHAKER", "name": "Shaker"}),
    )
    .await;
    let modern = term(
        &platform,
        &admin,
        "styles",
        json!({"code": "MODERN", "name": "Modern"}),
    )
    .await;

    // Nine white shaker kitchens (the ones the filters select), and decoys that each miss one
    // filter: another colour, another style, another category, and a draft.
    let mut expected = Vec::new();
    for i in 0..9 {
        let title = format!("Shaker Kitchen {i:02}");
        let created = expect(
            platform
                .post(
                    "/v1/products",
                    Some(&admin),
                    &json!({"title": title, "category": "KITCHEN", "status": "PUBLISHED",
                            "colourIds": [white, grey], "styleId": shaker,
                            "price": {"amount": 400_000 + i * 10_000, "currency": "GBP"}}),
                )
                .await,
            201,
        )
        .await;
        expected.push(created["id"].as_str().unwrap().to_owned());
    }
    for (title, category, colour, style, status) in [
        (
            "Grey Shaker Kitchen",
            "KITCHEN",
            &grey,
            &shaker,
            "PUBLISHED",
        ),
        (
            "White Modern Kitchen",
            "KITCHEN",
            &white,
            &modern,
            "PUBLISHED",
        ),
        (
            "White Shaker Wardrobe",
            "BEDROOM",
            &white,
            &shaker,
            "PUBLISHED",
        ),
        ("White Shaker Draft", "KITCHEN", &white, &shaker, "DRAFT"),
    ] {
        expect(
            platform
                .post(
                    "/v1/products",
                    Some(&admin),
                    &json!({"title": title, "category": category, "status": status,
                            "colourIds": [colour], "styleId": style}),
                )
                .await,
            201,
        )
        .await;
    }

    let query = "category=KITCHEN&filter[colour]=white&filter[style]=shaker";
    // Newest first, four at a time, following nextCursor until there is none.
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = format!("/v1/products?{query}&sort=-createdAt&limit=4");
    loop {
        let page = expect(platform.get(&path, None).await, 200).await;
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page["hasNextPage"], true);
                path = format!("/v1/products?{query}&sort=-createdAt&limit=4&cursor={cursor}");
            }
            None => {
                assert_eq!(page["hasNextPage"], false);
                break;
            }
        }
    }
    assert_eq!(pages, 3, "9 products, 4 a page");
    let mut newest_first = expected.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    // Price ascending is creation order here.
    let by_price = expect(
        platform
            .get(&format!("/v1/products?{query}&sort=price&limit=100"), None)
            .await,
        200,
    )
    .await;
    let ids: Vec<String> = by_price["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(by_price["hasNextPage"], false);

    // A filter the catalogue does not have is a 422 problem naming it.
    let bad = expect(
        platform
            .get(&format!("/v1/products?{query}&filter[material]=oak"), None)
            .await,
        422,
    )
    .await;
    assert_eq!(problem_code(&bad), "validation-failed");
}

/// Flow 5: a brochure request → an email with the PDF; the 4th request in the hour → 429.
#[tokio::test]
async fn flow_5_brochure_by_email_with_the_pdf_and_the_fourth_in_an_hour_is_429() {
    let platform = Platform::start().await;
    let email = "brochure.fan@example.com";
    let request = json!({
        "firstName": "Jane", "lastName": "Doe", "email": email, "phone": "07700 900123",
        "postcode": "SW4 0AB", "address": "1 Acre Lane, London", "interests": "KITCHEN",
    });
    let mut invalid = request.clone();
    invalid["postcode"] = json!("nope");
    expect(platform.post("/v1/brochures", None, &invalid).await, 422).await;

    let accepted = expect(platform.post("/v1/brochures", None, &request).await, 201).await;
    assert_eq!(accepted["message"], "Brochure on its way");
    let message = platform.email(email, "brochure").await;
    let attachments = message.attachments.as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0]["contentType"], "application/pdf");
    use base64::Engine;
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(attachments[0]["data"].as_str().unwrap())
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));

    for _ in 0..2 {
        expect(platform.post("/v1/brochures", None, &request).await, 201).await;
    }
    let limited = platform.post("/v1/brochures", None, &request).await;
    assert!(limited.headers().contains_key("retry-after"));
    let problem = expect(limited, 429).await;
    assert_eq!(problem["status"], 429);
    // Another address is not limited by this one's quota.
    let mut other = request.clone();
    other["email"] = json!("someone.else@example.com");
    expect(platform.post("/v1/brochures", None, &other).await, 201).await;
    // Three brochures for three accepted requests, none for the refused one.
    eventually("three brochure emails", || async {
        let sent = platform
            .emails(email)
            .await
            .into_iter()
            .filter(|e| e.subject.contains("brochure"))
            .count();
        (sent == 3).then_some(())
    })
    .await;
}

/// Flow 6: an administrator publishes a post → it is public → analytics consumed
/// `blog.published` (recorded, and the sitemap it asks content to rebuild lists the post).
#[tokio::test]
async fn flow_6_a_published_post_is_public_and_analytics_hears_of_it() {
    let platform = Platform::start().await;
    let admin = platform.admin("editor@lomashwood.co.uk").await;
    let draft = expect(
        platform
            .post(
                "/v1/blog",
                Some(&admin),
                &json!({"title": "Choosing a Worktop", "excerpt": "Stone or wood?",
                        "content": "# Worktops\n\nQuartz *lasts*.", "tags": ["Worktops"]}),
            )
            .await,
        201,
    )
    .await;
    let id = draft["id"].as_str().unwrap().to_owned();
    let slug = draft["slug"].as_str().unwrap().to_owned();
    assert_eq!(slug, "choosing-a-worktop");
    // A draft is not public.
    expect(platform.get(&format!("/v1/blog/{slug}"), None).await, 404).await;
    // A customer cannot publish.
    let (customer, _) = platform.customer("reader@example.com").await;
    expect(
        platform
            .post(
                &format!("/v1/blog/{id}/publish"),
                Some(&customer),
                &json!({}),
            )
            .await,
        403,
    )
    .await;

    let live = expect(
        platform
            .post(&format!("/v1/blog/{id}/publish"), Some(&admin), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(live["status"], "PUBLISHED");
    let public = expect(platform.get(&format!("/v1/blog/{slug}"), None).await, 200).await;
    assert_eq!(public["title"], "Choosing a Worktop");
    let list = expect(platform.get("/v1/blog", None).await, 200).await;
    assert_eq!(list["data"][0]["slug"], slug.as_str());

    // analytics records the publish (its event export) …
    let today = Utc::now().date_naive();
    eventually("blog_published in analytics", || async {
        let csv = platform
            .get(
                &format!("/v1/analytics/exports/events.csv?from={today}&to={today}"),
                Some(&admin),
            )
            .await;
        assert_eq!(csv.status(), StatusCode::OK);
        let csv = csv.text().await.unwrap();
        csv.lines()
            .any(|l| l.contains("blog_published") && l.contains(&slug))
            .then_some(())
    })
    .await;
    // … and has content rebuild the sitemap, which now lists the post.
    eventually("the post in the sitemap", || async {
        let sitemap = platform.get("/v1/sitemap.xml", None).await;
        let xml = sitemap.text().await.unwrap();
        xml.contains(&format!("/blog/{slug}")).then_some(())
    })
    .await;
}

/// A JPEG of `width`×`height` (a gradient, so it compresses like a photo).
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        let byte = |v: u32| u8::try_from(v % 256).unwrap();
        image::Rgb([byte(x), byte(y), byte(x + y)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// A multipart/form-data body with one file part; returns (content type, body).
fn multipart_file(bytes: &[u8], filename: &str, content_type: &str) -> (String, Vec<u8>) {
    let boundary = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Flow 7: an administrator uploads an image → the original and its variants are served.
#[tokio::test]
async fn flow_7_an_uploaded_image_is_served_with_its_variants() {
    let platform = Platform::start().await;
    let admin = platform.admin("editor@lomashwood.co.uk").await;
    let original = jpeg(2400, 1600);
    let upload = |token: String, bytes: Vec<u8>, name: &'static str, kind: &'static str| {
        let (content_type, body) = multipart_file(&bytes, name, kind);
        platform
            .request(Method::POST, "/v1/uploads", Some(&token))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // Not an image it accepts: refused, nothing stored.
    let refused = upload(
        admin.clone(),
        b"MZ\x90\x00 not an image".to_vec(),
        "setup.exe",
        "application/octet-stream",
    )
    .await
    .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    // A customer may not upload, and gets content's 403 even for a large body that content
    // refuses before reading it (the shared shell reads the rest, so the answer is not lost to a
    // connection reset and turned into a 502 at the gateway).
    let (customer, _) = platform.customer("uploader@example.com").await;
    let large = [original.as_slice(), &vec![0u8; 1024 * 1024]].concat();
    let forbidden = upload(customer, large, "k.jpg", "image/jpeg")
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);

    let asset = expect(
        upload(admin, original.clone(), "kitchen.jpg", "image/jpeg")
            .await
            .unwrap(),
        201,
    )
    .await;
    let original_url = asset["variants"]["original"].as_str().unwrap();
    assert!(
        original_url.starts_with(&platform.gateway_url),
        "{original_url}"
    );
    let served = platform.client.get(original_url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().as_ref(), original.as_slice());
    for (name, width) in [("large", 1920), ("medium", 800), ("thumb", 300)] {
        let url = asset["variants"][name].as_str().unwrap();
        let served = platform.client.get(url).send().await.unwrap();
        assert_eq!(served.status(), StatusCode::OK, "{name}: {url}");
        assert_eq!(served.headers()["content-type"], "image/webp", "{name}");
        let bytes = served.bytes().await.unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!(decoded.width(), width, "{name}");
        assert_eq!(decoded.height(), width * 2 / 3, "{name}");
    }
}

/// Flow 8: tracked events are accepted at once (202) and show in the dashboard after a flush.
#[tokio::test]
async fn flow_8_tracked_events_show_in_the_dashboard_after_a_flush() {
    let platform = Platform::start().await;
    let admin = platform.admin("analyst@lomashwood.co.uk").await;
    let event = |name: &str, session: &str| {
        json!({
            "event": name,
            "properties": {"productId": "kitchen-oak", "category": "KITCHEN"},
            "sessionId": session,
            "anonymousId": format!("anon-{session}"),
            "pageUrl": "https://www.lomashwood.co.uk/kitchens/oak",
            "referrer": "https://www.google.com/search?q=kitchens",
        })
    };
    let mut bad = event("product_viewed", "s-1");
    bad["event"] = json!("");
    expect(platform.post("/v1/analytics/track", None, &bad).await, 422).await;
    for (name, session) in [
        ("page_viewed", "s-1"),
        ("product_viewed", "s-1"),
        ("page_viewed", "s-2"),
        ("product_viewed", "s-3"),
    ] {
        expect(
            platform
                .post("/v1/analytics/track", None, &event(name, session))
                .await,
            202,
        )
        .await;
    }
    let today = Utc::now().date_naive();
    // A customer may not read the dashboard.
    let (customer, _) = platform.customer("curious@example.com").await;
    expect(
        platform
            .get(
                &format!("/v1/analytics/dashboard?from={today}&to={today}"),
                Some(&customer),
            )
            .await,
        403,
    )
    .await;
    let board = eventually("the tracked events in the dashboard", || async {
        let board = expect(
            platform
                .get(
                    &format!("/v1/analytics/dashboard?from={today}&to={today}"),
                    Some(&admin),
                )
                .await,
            200,
        )
        .await;
        (board["totals"]["pageViews"] == 2 && board["totals"]["sessions"] == 3).then_some(board)
    })
    .await;
    assert_eq!(board["totals"]["visitors"], 3);
    assert_eq!(board["topProducts"][0]["key"], "kitchen-oak");
    assert_eq!(board["topProducts"][0]["count"], 2);
    assert_eq!(board["topReferrers"][0]["key"], "www.google.com");
}
