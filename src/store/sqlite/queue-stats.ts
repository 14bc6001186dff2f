/**
 * The queue per pipeline, for metrics scrapes: attempts queued (ready or delayed, not held by a paused run) and
 * the availability time of the oldest one that is ready. Reads the partial index of queued attempts
 * (attempts_queue) and each one's run by primary key. Named parameters: now (epoch ms).
 */
export const QUEUE_STATS_SQL = `
SELECT r.pipeline AS pipeline, COUNT(*) AS depth, MIN(CASE WHEN a.available_at <= @now THEN a.available_at END) AS oldest_ready_at
FROM attempts a JOIN runs r ON r.id = a.run_id
WHERE a.status = 'queued'
GROUP BY r.pipeline`;
