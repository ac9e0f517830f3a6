-- Customers not yet in training
SELECT COUNT(*) as untrained_count
FROM customers c
LEFT JOIN customer_training_status cts ON c.customer_id::text = cts.customer_id
WHERE cts.customer_id IS NULL OR cts.included_in_training = FALSE;
