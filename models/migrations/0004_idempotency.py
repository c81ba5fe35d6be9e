# Idempotency keys of start mutations (issue 10): unique per (operator, key), so the
# database decides between racing requests that carry the same key.
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_token_life')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('operator', fields.ForeignKeyField('models.User', source_field='operator_id', db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=255)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('transfer', fields.ForeignKeyField('models.Transfer', source_field='transfer_id', db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'idempotency_key', 'app': 'models', 'unique_together': (('operator', 'key'),), 'pk_attr': 'id', 'table_description': "A start's key: which request it was (its fingerprint) and the transfer it created."},
            bases=['Model'],
        ),
    ]
