-- Numbers (issue 16, item 3): the name the business gives a number in Switchyard (the
-- provider's display number stays `display_name`), and the reply policy chosen for the number
-- (NULL: the tenant's).
ALTER TABLE connections ADD COLUMN name TEXT;
ALTER TABLE connections ADD COLUMN policy_plugin TEXT;
ALTER TABLE connections ADD COLUMN policy_config TEXT;
