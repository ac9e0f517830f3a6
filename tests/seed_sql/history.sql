-- Recent retraining events
SELECT 
    retrain_date,
    customers_trained,
    samples_trained,
    auc_score,
    model_version,
    training_duration_seconds
FROM model_retraining_log
ORDER BY retrain_date DESC
LIMIT 10;
