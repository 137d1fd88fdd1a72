-- Full-text search over keys' titles and descriptions (weighted) and public comments.
-- 'simple' configuration: no language-specific stemming in a multilingual organisation.

alter table tickets add column search tsvector generated always as (
    setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
    setweight(to_tsvector('simple', coalesce(description_md, '')), 'B')
) stored;
create index tickets_search_idx on tickets using gin (search);

create index ticket_events_comment_search_idx on ticket_events
    using gin (to_tsvector('simple', coalesce(data->>'body_md', '')))
    where kind = 'comment';
