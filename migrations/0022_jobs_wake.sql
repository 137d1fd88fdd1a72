-- The job loops LISTEN on `unitrack_jobs` (`jobs::WAKE_CHANNEL`). The database tells them
-- when a transaction that added jobs commits: no caller spends a statement of its own on the
-- wake-up (it was one round trip per queued mail), and none can forget it. A statement that
-- added nothing (an idempotency key seen before) wakes nobody.
create function jobs_wake() returns trigger language plpgsql as $$
begin
    if exists (select 1 from added) then
        perform pg_notify('unitrack_jobs', '');
    end if;
    return null;
end
$$;
create trigger jobs_wake after insert on jobs referencing new table as added
    for each statement execute function jobs_wake();
