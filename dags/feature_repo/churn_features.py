"""Feature definitions of the churn demo, versioned as code and applied by FeastApplyOperator.

One entity (``customer``), one parquet directory source (one part file per ingested batch), one feature
view over the numeric and categorical features, and the feature service models are trained on. The label
(``churned``) is not a feature: it comes with the training spine.

The offline data lives under ``MLOPS_FEATURE_DATA_URI`` (a local directory or an ``s3://`` prefix),
``data/offline`` in this repo by default: see ``catalog.py``, which names what this file defines.

Evolving these definitions: add features, views or a new service (``churn_v2``) freely. Removing a view
or a feature that a production model's service reads, or changing its dtype, is refused while that model
is champion.
"""

import os
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from catalog import ENTITY_KEY, FEATURE_SERVICE, FEATURE_VIEW, OFFLINE_DATA_URI, TIME_COLUMN

customer = Entity(
    name="customer",
    join_keys=[ENTITY_KEY],
    value_type=ValueType.INT64,
    description="A subscriber of the service.",
)

customer_stats_source = FileSource(
    name=f"{FEATURE_VIEW}_source",
    path=f"{OFFLINE_DATA_URI}/{FEATURE_VIEW}/",
    timestamp_field=TIME_COLUMN,
    s3_endpoint_override=os.environ.get("AWS_ENDPOINT_URL") or None,
    description="Customer snapshots, one parquet part file per ingested batch.",
)

customer_stats = FeatureView(
    name=FEATURE_VIEW,
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
    name=FEATURE_SERVICE,
    features=[customer_stats],
    description="The features of the churn model.",
)
