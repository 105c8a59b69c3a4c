"""Feature definitions of the churn demo, versioned as code and applied by FeastApplyOperator.

One entity (``customer``), one parquet directory source (one part file per ingested batch), one feature
view over the numeric and categorical features, and the feature service models are trained on. The label
(``churned``) is not a feature: it comes with the training spine.

The offline data lives under ``MLOPS_FEATURE_DATA_URI`` (a local directory or an ``s3://`` prefix),
``data/offline`` in this repo by default: see ``offline_data.py``.

Evolving these definitions: add features, views or a new service (``churn_v2``) freely. Removing a view
or a feature that a production model's service reads, or changing its dtype, is refused while that model
is champion.
"""

import os
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from offline_data import OFFLINE_DATA_URI

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A subscriber of the service.",
)

customer_stats_source = FileSource(
    name="customer_stats_source",
    path=f"{OFFLINE_DATA_URI}/customer_stats/",
    timestamp_field="event_timestamp",
    s3_endpoint_override=os.environ.get("AWS_ENDPOINT_URL") or None,
    description="Customer snapshots, one parquet part file per ingested batch.",
)

customer_stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[
        Field(name="tenure_months", dtype=Int64, description="Months since sign-up."),
        Field(name="monthly_charges", dtype=Float64, description="Current monthly bill."),
        Field(name="support_calls", dtype=Int64, description="Support calls in the last month."),
        Field(name="usage_gb", dtype=Float64, description="Data used in the last month."),
        Field(name="plan", dtype=String, description="basic, standard or premium."),
        Field(name="region", dtype=String, description="north, south, east or west."),
    ],
    source=customer_stats_source,
    online=True,
    tags={"owner": "ml-platform"},
)

churn_v1 = FeatureService(
    name="churn_v1",
    features=[customer_stats],
    description="The features of the churn model.",
)
