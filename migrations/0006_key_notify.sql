-- Hosts drop a cached API key only when something that decides access changes: stamping
-- last_used_at (at most once a minute per key) must not send every host back to the database.
DROP TRIGGER ft_api_keys_changed ON ft_api_keys;
CREATE TRIGGER ft_api_keys_changed AFTER UPDATE ON ft_api_keys
    FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
          OR OLD.roles IS DISTINCT FROM NEW.roles OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
          OR OLD.customer_id IS DISTINCT FROM NEW.customer_id OR OLD.instance_id IS DISTINCT FROM NEW.instance_id)
    EXECUTE FUNCTION ft_api_keys_changed();
CREATE TRIGGER ft_api_keys_deleted AFTER DELETE ON ft_api_keys
    FOR EACH ROW EXECUTE FUNCTION ft_api_keys_changed();
