-- What app instances may keep: published process versions never change, and group
-- members are reference data with a version.

-- A published process version never changes: tickets follow it, and app instances keep the
-- definitions they have read (`processes::definition`).
create trigger process_versions_immutable
    before update or delete on process_versions
    for each statement execute function refuse_history_change();
create trigger process_versions_no_truncate
    before truncate on process_versions
    for each statement execute function refuse_history_change();

-- The triage panel's member lists are reference data too (`queues::Reference::teams`).
create trigger group_members_reference after insert or update or delete or truncate on group_members
    for each statement execute function bump_reference_version();
create trigger users_reference after update of display_name, active on users
    for each statement execute function bump_reference_version();
