-- A user's access tokens end as soon as something that decides its access changes: it is
-- disabled, deleted, gets a new password, other roles or another customer. The row says "tokens
-- issued before this instant are void"; every host keeps these in memory, told by NOTIFY
-- (payload "user:<id>:<unix seconds>"), and reloads them after a reconnect. No foreign key: the
-- row outlives a deleted user. One row per user that ever changed: bounded by the users.
CREATE TABLE ft_user_revocations (
    user_id uuid PRIMARY KEY,
    not_before timestamptz NOT NULL
);

CREATE FUNCTION ft_users_revoke_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    uid uuid;
    at timestamptz := clock_timestamp();
BEGIN
    IF TG_OP = 'DELETE' THEN
        uid := OLD.id;
    ELSE
        uid := NEW.id;
    END IF;
    INSERT INTO ft_user_revocations (user_id, not_before) VALUES (uid, at)
    ON CONFLICT (user_id) DO UPDATE SET not_before = excluded.not_before;
    PERFORM pg_notify('ft_credentials', 'user:' || uid || ':' || floor(extract(epoch FROM at))::bigint);
    RETURN NULL;
END
$$;

CREATE TRIGGER ft_users_revoke_tokens AFTER UPDATE ON ft_users
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
          OR OLD.roles IS DISTINCT FROM NEW.roles OR OLD.customer_id IS DISTINCT FROM NEW.customer_id)
    EXECUTE FUNCTION ft_users_revoke_tokens();
CREATE TRIGGER ft_users_revoke_tokens_deleted AFTER DELETE ON ft_users
    FOR EACH ROW EXECUTE FUNCTION ft_users_revoke_tokens();
