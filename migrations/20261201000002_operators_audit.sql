-- Operator roles, disabling, visible sessions, and the audit trail.

-- owner: everything; operator: everything but operators and settings; viewer: read-only.
-- Operators who existed before roles could do everything: they become owners.
alter table operator add column role text not null default 'owner'
    check (role in ('owner', 'operator', 'viewer'));
-- Set when an owner disables the operator: they can no longer sign in, and their sessions
-- were ended. Null while enabled.
alter table operator add column disabled_at text;

-- What the operator sees of each of their sessions ("Your sessions"). `public_id` names a
-- session in forms and URLs; `id_hash` (the HMAC of the cookie) never leaves the database.
alter table operator_session add column public_id text;
alter table operator_session add column last_seen_at text;
alter table operator_session add column address text not null default '';
alter table operator_session add column user_agent text not null default '';
update operator_session
   set public_id = lower(hex(randomblob(16))), last_seen_at = created_at;
create unique index operator_session_public_id on operator_session (public_id);
create index operator_session_operator on operator_session (operator_id);

-- The audit trail: what operators did (and tried), append-only. `id` order is time order;
-- paging walks it backwards from a cursor.
create table audit_event (
    id          integer primary key autoincrement,
    at          text not null,
    -- The operator's name; "unknown" for a failed sign-in (the name typed is the target).
    actor       text not null,
    address     text not null,
    action      text not null,
    target      text not null default '',
    -- success, failure or denied (refused for the actor's role).
    outcome     text not null check (outcome in ('success', 'failure', 'denied'))
);
create index audit_event_actor on audit_event (actor, id);
create index audit_event_action on audit_event (action, id);
create index audit_event_at on audit_event (at);

create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'the audit trail is append-only');
end;
create trigger audit_event_no_delete before delete on audit_event
begin
    select raise(abort, 'the audit trail is append-only');
end;
