-- Full-text indexes take new entries into a pending list (GIN fastupdate) that every search
-- reads in full until it is merged. With the default 4 MB limit and autovacuum far away on a
-- big table (its insert threshold is a share of the rows), selective searches at 1M tickets
-- went from 0.3 ms to 7 ms after a few thousand filings. A small limit keeps that read short;
-- the inserting session merges the list a little more often.
alter index tickets_search_idx set (gin_pending_list_limit = 128);
alter index ticket_events_comment_search_idx set (gin_pending_list_limit = 128);
