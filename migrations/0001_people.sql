-- People who sign in, their sessions, and the sign-in throttle.

create table users (
    id uuid primary key,
    email text not null,
    display_name text not null,
    -- argon2id PHC string; null for accounts that cannot sign in with a password
    -- (e.g. requesters created from e-mail).
    password_hash text,
    is_admin boolean not null default false,
    active boolean not null default true,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint users_email_format check (email ~ '^[^@\s]+@[^@\s]+$'),
    constraint users_display_name_present check (length(trim(display_name)) > 0)
);
-- E-mail is unique without regard to case.
create unique index users_email_key on users (lower(email));

create table sessions (
    -- SHA-256 of the cookie's token: a copy of this table signs nobody in.
    token_hash bytea primary key,
    -- What pages show and forms post to revoke one session; not a secret.
    public_id uuid not null,
    user_id uuid not null references users (id),
    csrf_token text not null,
    created_at timestamptz not null,
    last_seen_at timestamptz not null,
    -- Absolute end, whatever the activity.
    expires_at timestamptz not null,
    user_agent text not null default '',
    client_addr text not null default '',
    constraint sessions_public_id_key unique (public_id)
);
create index sessions_user_idx on sessions (user_id);
create index sessions_expires_idx on sessions (expires_at);

-- Failed sign-ins per account and per client address. In the database, so the count survives
-- a restart and is shared by every app instance.
create table login_throttle (
    scope text not null,
    key text not null,
    failures integer not null,
    window_start timestamptz not null,
    locked_until timestamptz,
    primary key (scope, key),
    constraint login_throttle_scope check (scope in ('account', 'address'))
);
