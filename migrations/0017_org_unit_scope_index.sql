-- The indexed form of the visibility scope (`policy::push_ticket_scope_indexed`) reads the
-- tickets of the actor's organisation unit or site in projects that show them: one probe
-- per such project, none when no project does.
create index tickets_org_unit_project_idx on tickets (org_unit_id, project_id)
    where org_unit_id is not null;
create index tickets_site_project_idx on tickets (site_id, project_id)
    where site_id is not null;
