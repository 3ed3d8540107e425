-- A few cases to capture and one update request. Run again to add more (change the ids).
INSERT INTO cases (caseId, casePriority, caseDescr) VALUES
    ('CASE-1001', 5, 'Address change'),
    ('CASE-1002', 3, 'Refund request'),
    ('CASE-1003', 8, 'Complaint');
INSERT INTO case_updates (caseId, casePriority) VALUES ('CASE-1002', 9);
