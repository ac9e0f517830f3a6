-- Training coverage statistics
SELECT 
    COUNT(*) as total_customers,
    SUM(CASE WHEN included_in_training THEN 1 ELSE 0 END) as trained,
    SUM(CASE WHEN NOT included_in_training OR included_in_training IS NULL THEN 1 ELSE 0 END) as untrained
FROM customers c
LEFT JOIN customer_training_status cts ON c.customer_id::text = cts.customer_id;
