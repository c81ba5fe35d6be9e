from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TransferLane',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transfer', fields.ForeignKeyField('models.Transfer', source_field='transfer_id', db_constraint=True, to_field='id', related_name='lanes', on_delete=OnDelete.CASCADE)),
                ('lane', fields.IntField()),
                ('generation', fields.IntField(default=1)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('holder', fields.CharField(null=True, max_length=200)),
                ('finished', fields.BooleanField(default=False)),
            ],
            options={'table': 'transfer_lane', 'app': 'models', 'unique_together': (('transfer', 'lane'),), 'pk_attr': 'id', 'table_description': "One sequence of a transfer's pairs, worked by one job at a time under a lease."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='TransferItem',
            name='attempts',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='TransferItem',
            name='lane',
            field=fields.IntField(default=0),
        ),
        ops.AddIndex(
            model_name='TransferItem',
            index=Index(fields=['transfer_id', 'lane', 'status', 'position']),
        ),
        # Transfers queued or running across the upgrade: their pairs are all in lane 0.
        ops.RunSQL(
            "INSERT INTO transfer_lane (transfer_id, lane, generation, finished) "
            "SELECT id, 0, 1, false FROM transfer WHERE status IN ('QUEUED', 'RUNNING')",
            reverse_sql="SELECT 1",
        ),
    ]
