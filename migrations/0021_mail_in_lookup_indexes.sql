-- A message is stored once per Message-ID (or, without one, per SHA-256 of its bytes): the
-- ingest path has always kept it so, under an advisory lock. Unique indexes say it to the
-- database, so storing is one `insert … on conflict do nothing` instead of lock, look-up and
-- insert in a transaction of their own (five round trips). They also replace the plain
-- indexes, which the redelivery look-up (`… order by id limit 1`) did not use: the planner
-- walked the primary key backwards instead and read every stored message for an id not seen
-- yet (3.4 ms at 4,500 messages, growing with the table).
drop index mail_in_message_id;
create unique index mail_in_message_id on mail_in (message_id) where message_id is not null;
drop index mail_in_sha256;
create unique index mail_in_sha256 on mail_in (sha256) where message_id is null;
