-- Appointment types, showrooms, consultants, availability, time slots, bookings (never
-- overlapping), booking history, reminders and brochure requests.
--
-- The double-booking guarantee lives here: `bookings_no_overlap` excludes two active bookings of
-- one consultant whose blocked ranges (appointment plus buffer) intersect, and
-- `bookings_active_slot_key` allows one active booking per slot.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- A UUIDv7 (time-ordered) for rows the database creates itself (materialised slots).
CREATE OR REPLACE FUNCTION uuid_generate_v7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1),
        'hex')::uuid;
$$;

CREATE TABLE appointment_types (
    code             TEXT PRIMARY KEY
        CONSTRAINT appointment_types_code_check
        CHECK (code IN ('HOME_MEASUREMENT', 'SHOWROOM_VISIT', 'VIRTUAL_CONSULTATION')),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL
        CONSTRAINT appointment_types_duration_check CHECK (duration_minutes BETWEEN 15 AND 480),
    buffer_minutes   INTEGER NOT NULL DEFAULT 0
        CONSTRAINT appointment_types_buffer_check CHECK (buffer_minutes BETWEEN 0 AND 240),
    active           BOOLEAN NOT NULL DEFAULT true,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER appointment_types_updated_at BEFORE UPDATE ON appointment_types
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO appointment_types (code, name, description, duration_minutes, buffer_minutes) VALUES
    ('HOME_MEASUREMENT', 'Home measurement',
     'A designer visits your home to measure the room and talk through ideas.', 90, 30),
    ('SHOWROOM_VISIT', 'Showroom visit',
     'Meet a designer at one of our showrooms and see the ranges in person.', 60, 15),
    ('VIRTUAL_CONSULTATION', 'Virtual consultation',
     'A video call with a designer, from wherever suits you.', 45, 15);

CREATE TABLE showrooms (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL CONSTRAINT showrooms_name_key UNIQUE,
    address       TEXT NOT NULL,
    postcode      TEXT NOT NULL,
    phone         TEXT NOT NULL,
    email         TEXT NOT NULL,
    image_url     TEXT,
    -- [{"weekday": 1..7 (ISO, Monday = 1), "opens": "09:00", "closes": "17:30"}]
    opening_hours JSONB NOT NULL DEFAULT '[]'
        CONSTRAINT showrooms_opening_hours_check CHECK (jsonb_typeof(opening_hours) = 'array'),
    map_url       TEXT,
    latitude      DOUBLE PRECISION
        CONSTRAINT showrooms_latitude_check CHECK (latitude BETWEEN -90 AND 90),
    longitude     DOUBLE PRECISION
        CONSTRAINT showrooms_longitude_check CHECK (longitude BETWEEN -180 AND 180),
    active        BOOLEAN NOT NULL DEFAULT true,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER showrooms_updated_at BEFORE UPDATE ON showrooms
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX showrooms_postcode_idx ON showrooms (postcode);

CREATE TABLE consultants (
    id             UUID PRIMARY KEY,
    -- The auth user (role CONSULTANT) who signs in as this consultant.
    user_id        UUID NOT NULL CONSTRAINT consultants_user_id_key UNIQUE,
    name           TEXT NOT NULL,
    photo_url      TEXT,
    bio            TEXT,
    specialisation TEXT NOT NULL
        CONSTRAINT consultants_specialisation_check CHECK (specialisation IN ('KITCHEN', 'BEDROOM', 'BOTH')),
    showroom_id    UUID CONSTRAINT consultants_showroom_id_fkey REFERENCES showrooms (id),
    -- Outward codes (`SW4`, `EC1A`) or whole areas (`SW`, `EC`) covered for home visits.
    coverage       TEXT[] NOT NULL DEFAULT '{}',
    active         BOOLEAN NOT NULL DEFAULT true,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER consultants_updated_at BEFORE UPDATE ON consultants
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX consultants_coverage_idx ON consultants USING gin (coverage);

-- Weekly working hours: on `weekday` (ISO, Monday = 1) from `starts_at` to `ends_at`, London
-- time, the consultant offers `appointment_type` (at `showroom_id` for showroom visits).
CREATE TABLE availability_rules (
    id               UUID PRIMARY KEY,
    consultant_id    UUID NOT NULL
        CONSTRAINT availability_rules_consultant_id_fkey REFERENCES consultants (id) ON DELETE CASCADE,
    weekday          SMALLINT NOT NULL
        CONSTRAINT availability_rules_weekday_check CHECK (weekday BETWEEN 1 AND 7),
    starts_at        TIME NOT NULL,
    ends_at          TIME NOT NULL,
    appointment_type TEXT NOT NULL
        CONSTRAINT availability_rules_appointment_type_fkey REFERENCES appointment_types (code),
    showroom_id      UUID CONSTRAINT availability_rules_showroom_id_fkey REFERENCES showrooms (id),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT availability_rules_hours_check CHECK (ends_at > starts_at),
    CONSTRAINT availability_rules_showroom_check CHECK (
        (appointment_type = 'SHOWROOM_VISIT') = (showroom_id IS NOT NULL))
);
CREATE TRIGGER availability_rules_updated_at BEFORE UPDATE ON availability_rules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX availability_rules_consultant_idx ON availability_rules (consultant_id);

-- Holidays and blocked periods: slots inside them are not offered.
CREATE TABLE availability_exceptions (
    id            UUID PRIMARY KEY,
    consultant_id UUID NOT NULL
        CONSTRAINT availability_exceptions_consultant_id_fkey REFERENCES consultants (id) ON DELETE CASCADE,
    during        TSTZRANGE NOT NULL
        CONSTRAINT availability_exceptions_during_check CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    reason        TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER availability_exceptions_updated_at BEFORE UPDATE ON availability_exceptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX availability_exceptions_during_idx ON availability_exceptions USING gist (consultant_id, during);

-- Bookable time slots, materialised from the rules (see materialise_slots).
-- OPEN: offered; BOOKED: an active booking holds it; BLOCKED: inside an exception;
-- RETIRED: its rule no longer produces it.
CREATE TABLE time_slots (
    id               UUID PRIMARY KEY,
    consultant_id    UUID NOT NULL
        CONSTRAINT time_slots_consultant_id_fkey REFERENCES consultants (id) ON DELETE CASCADE,
    appointment_type TEXT NOT NULL
        CONSTRAINT time_slots_appointment_type_fkey REFERENCES appointment_types (code),
    showroom_id      UUID CONSTRAINT time_slots_showroom_id_fkey REFERENCES showrooms (id),
    during           TSTZRANGE NOT NULL
        CONSTRAINT time_slots_during_check CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    status           TEXT NOT NULL DEFAULT 'OPEN'
        CONSTRAINT time_slots_status_check CHECK (status IN ('OPEN', 'BOOKED', 'BLOCKED', 'RETIRED')),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT time_slots_natural_key UNIQUE NULLS NOT DISTINCT (consultant_id, appointment_type, showroom_id, during)
);
CREATE TRIGGER time_slots_updated_at BEFORE UPDATE ON time_slots
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- The availability search: open slots of a type in a time window.
CREATE INDEX time_slots_open_idx ON time_slots (appointment_type, (lower(during))) WHERE status = 'OPEN';
CREATE INDEX time_slots_consultant_during_idx ON time_slots USING gist (consultant_id, during);

CREATE TABLE bookings (
    id               UUID PRIMARY KEY,
    reference_code   TEXT NOT NULL CONSTRAINT bookings_reference_code_key UNIQUE
        CONSTRAINT bookings_reference_code_check CHECK (reference_code ~ '^BK-[0-9]{8}-[A-Z0-9]{4}$'),
    -- The customer's account; NULL for a guest until they verify this email address.
    user_id          UUID,
    appointment_type TEXT NOT NULL
        CONSTRAINT bookings_appointment_type_fkey REFERENCES appointment_types (code),
    for_kitchen      BOOLEAN NOT NULL,
    for_bedroom      BOOLEAN NOT NULL,
    first_name       TEXT NOT NULL,
    last_name        TEXT NOT NULL,
    email            TEXT NOT NULL,
    phone            TEXT NOT NULL,
    postcode         TEXT NOT NULL,
    address          TEXT NOT NULL,
    notes            TEXT,
    slot_id          UUID NOT NULL CONSTRAINT bookings_slot_id_fkey REFERENCES time_slots (id),
    consultant_id    UUID NOT NULL CONSTRAINT bookings_consultant_id_fkey REFERENCES consultants (id),
    showroom_id      UUID CONSTRAINT bookings_showroom_id_fkey REFERENCES showrooms (id),
    -- The appointment itself, and the consultant's time it blocks (plus the type's buffer).
    during           TSTZRANGE NOT NULL,
    blocks           TSTZRANGE NOT NULL,
    status           TEXT NOT NULL DEFAULT 'PENDING'
        CONSTRAINT bookings_status_check CHECK (status IN ('PENDING', 'CONFIRMED', 'COMPLETED', 'NO_SHOW', 'CANCELLED')),
    -- The slot, consultant, showroom and type as they were when booked.
    snapshot         JSONB NOT NULL,
    cancelled_at     TIMESTAMPTZ,
    cancel_reason    TEXT,
    anonymised_at    TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT bookings_category_check CHECK (for_kitchen OR for_bedroom),
    CONSTRAINT bookings_blocks_check CHECK (blocks @> during),
    CONSTRAINT bookings_cancelled_check CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL)),
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (consultant_id WITH =, blocks WITH &&)
        WHERE (status IN ('PENDING', 'CONFIRMED'))
);
CREATE TRIGGER bookings_updated_at BEFORE UPDATE ON bookings
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE UNIQUE INDEX bookings_active_slot_key ON bookings (slot_id) WHERE status IN ('PENDING', 'CONFIRMED');
CREATE INDEX bookings_user_idx ON bookings (user_id, (lower(during)) DESC, id DESC) WHERE user_id IS NOT NULL;
CREATE INDEX bookings_guest_email_idx ON bookings (lower(email)) WHERE user_id IS NULL;
CREATE INDEX bookings_consultant_idx ON bookings (consultant_id, (lower(during)));
CREATE INDEX bookings_start_idx ON bookings ((lower(during)), id);
CREATE INDEX bookings_reminder_idx ON bookings ((lower(during))) WHERE status = 'CONFIRMED';

-- Every change of a booking, with who and why.
CREATE TABLE booking_history (
    id          UUID PRIMARY KEY,
    booking_id  UUID NOT NULL CONSTRAINT booking_history_booking_id_fkey REFERENCES bookings (id) ON DELETE CASCADE,
    action      TEXT NOT NULL CONSTRAINT booking_history_action_check
        CHECK (action IN ('CREATED', 'CONFIRMED', 'COMPLETED', 'NO_SHOW', 'CANCELLED', 'RESCHEDULED', 'LINKED', 'ANONYMISED')),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor_id    UUID,
    -- CUSTOMER, CONSULTANT, ADMIN, SUPER_ADMIN, GUEST or SYSTEM.
    actor_role  TEXT NOT NULL,
    reason      TEXT,
    details     JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX booking_history_booking_idx ON booking_history (booking_id, created_at);

-- One row per reminder sent: written with its outbox row in one transaction, so each reminder
-- goes out exactly once whatever the number of replicas or restarts.
CREATE TABLE reminders_sent (
    booking_id UUID NOT NULL CONSTRAINT reminders_sent_booking_id_fkey REFERENCES bookings (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CONSTRAINT reminders_sent_kind_check CHECK (kind IN ('DAY_BEFORE', 'SAME_DAY')),
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT reminders_sent_pkey PRIMARY KEY (booking_id, kind)
);

CREATE TABLE brochure_requests (
    id                UUID PRIMARY KEY,
    user_id           UUID,
    first_name        TEXT NOT NULL,
    last_name         TEXT NOT NULL,
    email             TEXT NOT NULL,
    phone             TEXT NOT NULL,
    postcode          TEXT NOT NULL,
    address           TEXT NOT NULL,
    interests         TEXT NOT NULL
        CONSTRAINT brochure_requests_interests_check CHECK (interests IN ('KITCHEN', 'BEDROOM', 'BOTH')),
    marketing_consent BOOLEAN NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TRIGGER brochure_requests_updated_at BEFORE UPDATE ON brochure_requests
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX brochure_requests_created_idx ON brochure_requests (created_at DESC, id DESC);
CREATE INDEX brochure_requests_user_idx ON brochure_requests (user_id) WHERE user_id IS NOT NULL;

-- The slots the rules call for over the next `p_days` days (London dates), future ones only.
CREATE OR REPLACE FUNCTION wanted_slots(p_consultant UUID, p_days INTEGER)
RETURNS TABLE (consultant_id UUID, appointment_type TEXT, showroom_id UUID, during TSTZRANGE)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT r.consultant_id, r.appointment_type, r.showroom_id,
           tstzrange(s.local_start AT TIME ZONE 'Europe/London',
                     (s.local_start + make_interval(mins => t.duration_minutes)) AT TIME ZONE 'Europe/London',
                     '[)')
    FROM availability_rules r
    JOIN consultants c ON c.id = r.consultant_id AND c.active
    JOIN appointment_types t ON t.code = r.appointment_type AND t.active
    CROSS JOIN LATERAL generate_series(
        (now() AT TIME ZONE 'Europe/London')::date::timestamp,
        (now() AT TIME ZONE 'Europe/London')::date::timestamp + make_interval(days => p_days),
        interval '1 day') AS d(day)
    CROSS JOIN LATERAL generate_series(
        d.day + r.starts_at,
        d.day + r.ends_at - make_interval(mins => t.duration_minutes),
        make_interval(mins => t.duration_minutes + t.buffer_minutes)) AS s(local_start)
    WHERE extract(isodow FROM d.day) = r.weekday
      AND (p_consultant IS NULL OR r.consultant_id = p_consultant)
      AND s.local_start AT TIME ZONE 'Europe/London' > now()
$$;

-- Brings future slots in step with the rules and exceptions: creates missing slots, retires
-- slots no rule produces any more, blocks slots inside exceptions and reopens the rest. BOOKED
-- slots are never touched. Idempotent: a second run changes nothing. Runs serialised.
CREATE OR REPLACE FUNCTION materialise_slots(p_consultant UUID, p_days INTEGER)
RETURNS TABLE (created BIGINT, changed BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_created BIGINT;
    v_changed BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('appointment.materialise_slots'));

    WITH w AS MATERIALIZED (SELECT * FROM wanted_slots(p_consultant, p_days)),
    desired AS (
        SELECT s.id,
               CASE
                   WHEN w.consultant_id IS NULL THEN 'RETIRED'
                   WHEN EXISTS (
                       SELECT 1 FROM availability_exceptions e
                       WHERE e.consultant_id = s.consultant_id AND e.during && s.during) THEN 'BLOCKED'
                   ELSE 'OPEN'
               END AS status
        FROM time_slots s
        -- A hash join (wanted slots are distinct): NULL showrooms compared as equal.
        LEFT JOIN w ON w.consultant_id = s.consultant_id
                   AND w.appointment_type = s.appointment_type
                   AND coalesce(w.showroom_id, '00000000-0000-0000-0000-000000000000'::uuid)
                     = coalesce(s.showroom_id, '00000000-0000-0000-0000-000000000000'::uuid)
                   AND w.during = s.during
        WHERE s.status IN ('OPEN', 'BLOCKED', 'RETIRED')
          AND lower(s.during) > now()
          AND (p_consultant IS NULL OR s.consultant_id = p_consultant)
    )
    UPDATE time_slots t SET status = d.status
    FROM desired d
    WHERE t.id = d.id
      AND t.status <> d.status
      -- Re-checked on rows a concurrent booking changed: BOOKED slots are left alone.
      AND t.status IN ('OPEN', 'BLOCKED', 'RETIRED');
    GET DIAGNOSTICS v_changed = ROW_COUNT;

    INSERT INTO time_slots (id, consultant_id, appointment_type, showroom_id, during, status)
    SELECT uuid_generate_v7(), w.consultant_id, w.appointment_type, w.showroom_id, w.during,
           CASE WHEN EXISTS (
               SELECT 1 FROM availability_exceptions e
               WHERE e.consultant_id = w.consultant_id AND e.during && w.during)
           THEN 'BLOCKED' ELSE 'OPEN' END
    FROM wanted_slots(p_consultant, p_days) w
    ORDER BY lower(w.during)
    ON CONFLICT ON CONSTRAINT time_slots_natural_key DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;

    RETURN QUERY SELECT v_created, v_changed;
END;
$$;
