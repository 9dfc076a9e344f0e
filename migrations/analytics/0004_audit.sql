-- The audit trail (issue 14; service_kit::audit): who changed what, when. Analytics has no admin
-- writes of its own; its rows record operations such as `analytics-service dlq replay --actor`.
-- Append-only: triggers refuse UPDATE, DELETE and TRUNCATE. `changes` is a redacted diff that
-- holds no personal data beyond ids, so GDPR erasure leaves these rows alone.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid NOT NULL,
    actor_role  text NOT NULL,
    service     text NOT NULL DEFAULT 'analytics',
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    action      text NOT NULL,
    changes     jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text,
    CONSTRAINT audit_log_changes_object CHECK (jsonb_typeof(changes) = 'object')
);

-- Newest first, alone or under one filter (keyset on occurred_at, id).
CREATE INDEX audit_log_newest ON audit_log (occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_entity ON audit_log (entity, entity_id, occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_actor ON audit_log (actor_id, occurred_at DESC, id DESC);
CREATE INDEX audit_log_by_action ON audit_log (action, occurred_at DESC, id DESC);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
