-- The W3C traceparent of the span a job was queued under: its worker continues that trace.
ALTER TABLE jobs ADD COLUMN trace TEXT;
