-- Model services (issue 8): one model version deployed under a name of its
-- own, which is the {name} of /v2/models/{name}. Names and limits are
-- validated by internal/services; the checks here keep a buggy caller from
-- storing what no API would accept.

-- A service's domain is a domain's name, or '*' for a service without
-- one (no row to reference: triggers enforce it, as for models). The
-- model version it deploys cannot be deleted while it exists.
CREATE TABLE model_services (
    name           TEXT NOT NULL PRIMARY KEY CHECK (
                       length(name) BETWEEN 1 AND 63
                       AND name NOT GLOB '*[^a-z0-9-]*'
                       AND name NOT GLOB '-*' AND name NOT GLOB '*-'),
    domain         TEXT NOT NULL CHECK (domain <> ''),
    model_id       TEXT NOT NULL,
    model_version  TEXT NOT NULL,
    replicas       INTEGER NOT NULL CHECK (replicas BETWEEN 0 AND 64),
    memory_bytes   INTEGER NOT NULL CHECK (memory_bytes > 0),
    threads        INTEGER NOT NULL CHECK (threads > 0),
    max_concurrent INTEGER NOT NULL CHECK (max_concurrent > 0),
    timeout_ms     INTEGER NOT NULL CHECK (timeout_ms > 0),
    desired_state  TEXT NOT NULL CHECK (desired_state IN ('running', 'stopped')),
    state          TEXT NOT NULL CHECK (state IN ('created', 'starting', 'ready', 'stopping', 'stopped', 'failed')),
    state_reason   TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    FOREIGN KEY (model_id, model_version) REFERENCES model_versions(model_id, version) ON DELETE RESTRICT
) STRICT;
CREATE INDEX model_services_version ON model_services(model_id, model_version);
CREATE INDEX model_services_domain ON model_services(domain);

CREATE TRIGGER model_services_domain_insert BEFORE INSERT ON model_services
WHEN NEW.domain <> '*' AND NOT EXISTS (SELECT 1 FROM domains WHERE name = NEW.domain)
BEGIN
    SELECT RAISE(ABORT, 'model service names an unknown domain');
END;
-- Access decisions and audit records name a service by its domain: it
-- cannot move, and what it deploys is changed by a new service (later: a
-- traffic split), not under its name.
CREATE TRIGGER model_services_immutable BEFORE UPDATE ON model_services
WHEN NEW.name IS NOT OLD.name OR NEW.domain IS NOT OLD.domain
  OR NEW.model_id IS NOT OLD.model_id OR NEW.model_version IS NOT OLD.model_version
  OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'a model service''s name, domain and model version cannot change');
END;
CREATE TRIGGER domains_in_use_by_model_services BEFORE DELETE ON domains
WHEN EXISTS (SELECT 1 FROM model_services WHERE domain = OLD.name)
BEGIN
    SELECT RAISE(ABORT, 'domain is named by a model service');
END;
