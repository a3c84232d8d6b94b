-- A template's name for people when its name is an id (Twilio's content `friendly_name`; the
-- SID is what a send names). Provider input, bounded by the host.
ALTER TABLE templates ADD COLUMN display_name TEXT;
