"""estat-lake: e-Stat API → raw JSON → conformed Parquet → Iceberg, orchestrated by Dagster."""

CREDIT_NOTICE = (
    "このサービスは、政府統計総合窓口(e-Stat)のAPI機能を使用していますが、"
    "サービスの内容は国によって保証されたものではありません。"
)
CREDIT_NOTICE_EN = (
    "This service uses the API of e-Stat (Portal Site of Official Statistics of Japan), "
    "but its content is not guaranteed by the Government of Japan."
)

__all__ = ["CREDIT_NOTICE", "CREDIT_NOTICE_EN"]
