# Undo and chosen data types (issue 8): the journal of applied pairs and the copies of
# the rows an OVERWRITE deleted; a transfer's chosen types, the transfer a REVERT undoes.
# Transfers from before the journal keep journaled = false: they cannot be reverted.
from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.transfers import TransferKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_idempotency')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JournalMove',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('models.TransferItem', source_field='item_id', db_index=True, db_constraint=True, to_field='id', related_name='journal', on_delete=OnDelete.CASCADE)),
                ('data_type', fields.CharField(max_length=64)),
                ('owner_column', fields.CharField(max_length=64)),
                ('previous_owner_id', fields.IntField()),
                ('record_ids', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'journal_move', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The records of one data type that a pair reassigned in one owner column, from `previous_owner`.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JournalRemoved',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('models.TransferItem', source_field='item_id', db_index=True, db_constraint=True, to_field='id', related_name='removed', on_delete=OnDelete.CASCADE)),
                ('table_name', fields.CharField(max_length=64)),
                ('rows', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'journal_removed', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The rows of one storage table that an OVERWRITE deleted for a pair, as they were.'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='Transfer',
            name='kind',
            field=fields.CharEnumField(description='SINGLE: SINGLE\nBULK: BULK\nREVERT: REVERT', enum_type=TransferKind, max_length=16),
        ),
        ops.AddField(
            model_name='Transfer',
            name='data_types',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Transfer',
            name='journaled',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Transfer',
            name='revert_of',
            field=fields.ForeignKeyField('models.Transfer', source_field='revert_of_id', null=True, unique=True, db_constraint=True, to_field='id', related_name='reverts', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='TransferItem',
            name='restored',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='TransferItem',
            name='reverts',
            field=fields.ForeignKeyField('models.TransferItem', source_field='reverts_id', null=True, db_constraint=True, to_field='id', related_name='reverted_by', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='TransferItem',
            name='skipped',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
    ]
