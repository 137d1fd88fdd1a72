-- Background work: rows claimed with FOR UPDATE SKIP LOCKED, so any number of app instances
-- can run them; retried with backoff; an idempotency key makes enqueueing twice a no-op.

create table jobs (
    id bigint generated always as identity primary key,
    kind text not null,
    payload jsonb not null default '{}',
    idempotency_key text,
    run_at timestamptz not null,
    attempts integer not null default 0,
    max_attempts integer not null default 10,
    -- While a worker holds the job; after it passes, another worker may take it over.
    locked_until timestamptz,
    last_error text,
    created_at timestamptz not null,
    done_at timestamptz,
    failed_at timestamptz,
    constraint jobs_idempotency_key unique (idempotency_key)
);
-- What is due: the claim query's only access path.
create index jobs_due_idx on jobs (run_at, id) where done_at is null and failed_at is null;
