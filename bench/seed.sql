-- Synthetic data for query plans and benchmarks: `psql -v tickets=100000 -f bench/seed.sql`
-- on a migrated, empty database. Projects, groups, users and tickets spread the way a help
-- desk's are (most tickets closed, a few thousand open per group, SLA dues on open ones),
-- each ticket with its `created` event. Deterministic: setseed.
\set ON_ERROR_STOP on
\if :{?tickets}
\else
\set tickets 100000
\endif
select setseed(0.42);

insert into projects (id, key, name, kind, created_at)
select gen_random_uuid(), 'P' || lpad(i::text, 3, '0'), 'Project ' || i,
       (array['service_desk', 'rollout', 'development'])[1 + i % 3], now()
from generate_series(1, 20) i;

insert into groups (id, name, created_at)
select gen_random_uuid(), 'Group ' || i, now() from generate_series(1, 50) i;

insert into users (id, email, display_name, created_at, updated_at)
select gen_random_uuid(), 'user' || i || '@bench.example', 'User ' || i, now(), now()
from generate_series(1, 2000) i;

insert into group_members (group_id, user_id)
select g.id, u.id
from (select id, row_number() over (order by id) n from groups) g
join (select id, row_number() over (order by id) n from users) u on u.n % 50 = g.n - 1
where u.n <= 500;

create temp table ids as
select (select array_agg(id order by id) from projects) p,
       (select array_agg(id order by id) from groups) g,
       (select array_agg(id order by id) from users) u;

insert into tickets (id, project_id, number, title, description_md, description_html,
                     requester_id, state, state_category, assignee_group_id, assignee_id,
                     priority, sla_due, sla_warn_at, created_at, updated_at)
select gen_random_uuid(),
       ids.p[1 + (n % 20)],
       n,
       'Ticket ' || n || ' ' || (array['printer', 'vpn', 'login', 'sap', 'laptop', 'mail'])[1 + n % 6],
       'Something about ' || md5(n::text),
       '<p>Something</p>',
       ids.u[1 + (n * 7919) % 2000],
       c, c,
       ids.g[1 + (n * 31) % 50],
       case when random() < 0.6 then ids.u[1 + (n * 13) % 500] end,
       1 + (n % 4),
       case when c in ('new', 'open') then now() + (random() * interval '5 days') - interval '1 day' end,
       case when c in ('new', 'open') then now() + (random() * interval '4 days') - interval '1 day' end,
       now() - (random() * interval '730 days'),
       now() - (random() * interval '30 days')
from ids, generate_series(1, :tickets) n,
     lateral (select case when random() < 0.85 then 'closed'
                          when random() < 0.3 then 'resolved'
                          when random() < 0.5 then 'waiting'
                          when random() < 0.5 then 'new'
                          else 'open' end || substr(n::text, 1, 0) as c) cat;

insert into ticket_events (ticket_id, kind, data, created_at)
select id, 'created', jsonb_build_object('type', 'created', 'title', title), created_at from tickets;

update projects p set next_number = (select coalesce(max(number), 0) + 1 from tickets t where t.project_id = p.id);
analyze;
