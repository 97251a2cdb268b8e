-- The gauge backorder_skus_below_reorder_point (services/allocation/metrics.py) counts the
-- SKUs whose last crossing check found them below their reorder point every few seconds: a
-- partial index keeps that count as small as the number of such SKUs, not of all SKUs.
create index planning_result_below_reorder_point on planning_result (sku)
    where below_reorder_point;
