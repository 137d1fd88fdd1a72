-- Ticket numbers come from one sequence per project instead of a counter row in `projects`.
-- The counter row was locked from a filing's number until its commit, so every filing into
-- a project waited for the previous one's commit (its fsync): one project took about 120
-- filings per second whatever the hardware. A sequence hands out numbers without a lock.
-- The price: a filing that fails after taking its number (a database error, not a refused
-- form: forms are checked first) leaves a gap in that project's numbers.

create function ticket_number_sequence(project uuid) returns text
    language sql immutable
    as $$ select 'ticket_numbers_' || replace(project::text, '-', '') $$;

create function projects_number_sequence() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        execute format('create sequence %I minvalue 1', ticket_number_sequence(new.id));
    else
        execute format('drop sequence if exists %I', ticket_number_sequence(old.id));
    end if;
    return null;
end $$;

create trigger projects_number_sequence after insert or delete on projects
    for each row execute function projects_number_sequence();

do $$
declare
    p record;
begin
    for p in select id, next_number from projects loop
        execute format('create sequence %I minvalue 1 start with %s',
                       ticket_number_sequence(p.id), p.next_number);
    end loop;
end $$;

alter table projects drop column next_number;
