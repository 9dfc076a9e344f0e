//! Demo data for `cargo xtask seed` / `appointment-service seed`: two London showrooms, four
//! consultants (covering the SW and EC postcode areas and a few neighbours for home visits) with
//! weekly rules, then slots for the horizon. Idempotent: fixed ids, upserts, and rules replaced
//! wholesale for the seeded consultants.
//!
//! The consultants' `userId`s are fixed ids; to let a consultant sign in and see their diary,
//! create an auth user with role CONSULTANT and point the consultant at it
//! (`PATCH /v1/admin/consultants/{id}` with `{"userId": …}`).

use chrono::NaiveTime;
use sqlx::PgPool;
use uuid::Uuid;

struct Showroom {
    id: Uuid,
    name: &'static str,
    address: &'static str,
    postcode: &'static str,
    phone: &'static str,
    email: &'static str,
    lat: f64,
    lng: f64,
}

struct Consultant {
    id: Uuid,
    user_id: Uuid,
    name: &'static str,
    bio: &'static str,
    specialisation: &'static str,
    showroom: Uuid,
    coverage: &'static [&'static str],
}

const CLAPHAM: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0a01);
const CITY: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0a02);

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// Loads the demo data and materialises slots `horizon_days` ahead.
pub async fn run(db: &PgPool, horizon_days: i32) -> anyhow::Result<()> {
    let showrooms = [
        Showroom {
            id: CLAPHAM,
            name: "Lomash Wood Clapham",
            address: "112 Clapham High Street, London",
            postcode: "SW4 7UJ",
            phone: "+442071234001",
            email: "clapham@lomashwood.co.uk",
            lat: 51.4627,
            lng: -0.1376,
        },
        Showroom {
            id: CITY,
            name: "Lomash Wood Clerkenwell",
            address: "28 St John Street, London",
            postcode: "EC1M 4AY",
            phone: "+442071234002",
            email: "clerkenwell@lomashwood.co.uk",
            lat: 51.5209,
            lng: -0.1030,
        },
    ];
    let hours = serde_json::json!([
        {"weekday": 1, "opens": "09:00:00", "closes": "17:30:00"},
        {"weekday": 2, "opens": "09:00:00", "closes": "17:30:00"},
        {"weekday": 3, "opens": "09:00:00", "closes": "17:30:00"},
        {"weekday": 4, "opens": "09:00:00", "closes": "19:30:00"},
        {"weekday": 5, "opens": "09:00:00", "closes": "17:30:00"},
        {"weekday": 6, "opens": "10:00:00", "closes": "16:00:00"},
    ]);
    let consultants = [
        Consultant {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0c01),
            user_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0d01),
            name: "Amelia Hart",
            bio: "Fifteen years designing shaker and handleless kitchens across south-west London.",
            specialisation: "KITCHEN",
            showroom: CLAPHAM,
            coverage: &["SW", "SE11", "SE5"],
        },
        Consultant {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0c02),
            user_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0d02),
            name: "James Okafor",
            bio: "Fitted wardrobes and bedroom storage that uses every centimetre.",
            specialisation: "BEDROOM",
            showroom: CLAPHAM,
            coverage: &["SW", "W"],
        },
        Consultant {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0c03),
            user_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0d03),
            name: "Priya Shah",
            bio: "Kitchens and bedrooms for City flats and Victorian terraces alike.",
            specialisation: "BOTH",
            showroom: CITY,
            coverage: &["EC", "WC", "N1", "E1"],
        },
        Consultant {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0c04),
            user_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0d04),
            name: "Tom Reid",
            bio: "Open-plan kitchen specialist; happy to talk islands for hours.",
            specialisation: "KITCHEN",
            showroom: CITY,
            coverage: &["EC", "E", "N"],
        },
    ];

    let mut tx = db.begin().await?;
    for s in &showrooms {
        sqlx::query!(
            "INSERT INTO showrooms (id, name, address, postcode, phone, email, opening_hours,
                                    map_url, latitude, longitude)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET
                 name = EXCLUDED.name, address = EXCLUDED.address, postcode = EXCLUDED.postcode,
                 phone = EXCLUDED.phone, email = EXCLUDED.email,
                 opening_hours = EXCLUDED.opening_hours, map_url = EXCLUDED.map_url,
                 latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, active = true",
            s.id,
            s.name,
            s.address,
            s.postcode,
            s.phone,
            s.email,
            hours,
            format!(
                "https://www.openstreetmap.org/?mlat={}&mlon={}",
                s.lat, s.lng
            ),
            s.lat,
            s.lng,
        )
        .execute(&mut *tx)
        .await?;
    }
    for c in &consultants {
        let coverage: Vec<String> = c.coverage.iter().map(|s| (*s).to_owned()).collect();
        sqlx::query!(
            "INSERT INTO consultants (id, user_id, name, bio, specialisation, showroom_id, coverage)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET
                 name = EXCLUDED.name, bio = EXCLUDED.bio,
                 specialisation = EXCLUDED.specialisation, showroom_id = EXCLUDED.showroom_id,
                 coverage = EXCLUDED.coverage, active = true",
            c.id,
            c.user_id,
            c.name,
            c.bio,
            c.specialisation,
            c.showroom,
            &coverage,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM availability_rules WHERE consultant_id = $1",
            c.id
        )
        .execute(&mut *tx)
        .await?;
        // Weekdays: home visits in the morning, the showroom in the afternoon; Thursday
        // evenings on video; Saturdays in the showroom.
        let mut rules: Vec<(i16, NaiveTime, NaiveTime, &str, Option<Uuid>)> = Vec::new();
        for weekday in 1..=5 {
            rules.push((weekday, time(9, 0), time(13, 0), "HOME_MEASUREMENT", None));
            rules.push((
                weekday,
                time(14, 0),
                time(17, 30),
                "SHOWROOM_VISIT",
                Some(c.showroom),
            ));
        }
        rules.push((4, time(17, 30), time(19, 30), "VIRTUAL_CONSULTATION", None));
        rules.push((
            6,
            time(10, 0),
            time(16, 0),
            "SHOWROOM_VISIT",
            Some(c.showroom),
        ));
        for (weekday, starts, ends, kind, showroom) in rules {
            sqlx::query!(
                "INSERT INTO availability_rules
                     (id, consultant_id, weekday, starts_at, ends_at, appointment_type, showroom_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                Uuid::now_v7(),
                c.id,
                weekday,
                starts,
                ends,
                kind,
                showroom,
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    let done = crate::slots::materialise_in(&mut tx, None, horizon_days).await?;
    tx.commit().await?;
    tracing::info!(
        showrooms = showrooms.len(),
        consultants = consultants.len(),
        slots_created = done.created,
        "appointment demo data loaded"
    );
    Ok(())
}
