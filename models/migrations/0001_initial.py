import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from models.transfers import ItemStatus, TransferKind, TransferStatus


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Tenant',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=200)),
            ],
            options={'table': 'tenant', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Team',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='teams', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
            ],
            options={'table': 'team', 'app': 'models', 'unique_together': (('tenant', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='View',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='views', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
            ],
            options={'table': 'view', 'app': 'models', 'unique_together': (('tenant', 'name'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.CASCADE)),
                ('user_id', fields.IntField()),
                ('first_name', fields.CharField(max_length=100)),
                ('last_name', fields.CharField(max_length=100)),
                ('username', fields.CharField(max_length=150)),
                ('email', fields.CharField(null=True, max_length=254)),
                ('active', fields.BooleanField(default=True)),
                ('tenant_admin', fields.BooleanField(default=False)),
                ('can_transfer', fields.BooleanField(default=False)),
                ('view', fields.ForeignKeyField('models.View', source_field='view_id', null=True, db_constraint=True, to_field='id', related_name='operators', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'app_user', 'app': 'models', 'unique_together': (('tenant', 'user_id'), ('tenant', 'username')), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AgentSchedule',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='schedule', on_delete=OnDelete.CASCADE)),
                ('pattern', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'agent_schedule', 'app': 'models', 'pk_attr': 'id', 'table_description': 'At most one schedule per user (the unique owner), hence OVERWRITE.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApiToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'api_token', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BulkUpload',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('uploaded_by', fields.ForeignKeyField('models.User', source_field='uploaded_by_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.CASCADE)),
                ('filename', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('row_count', fields.IntField(default=0)),
                ('pair_count', fields.IntField(default=0)),
                ('error_count', fields.IntField(default=0)),
                ('errors', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('people_form', fields.BooleanField(default=True)),
            ],
            options={'table': 'bulk_upload', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BulkUploadRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('upload', fields.ForeignKeyField('models.BulkUpload', source_field='upload_id', db_constraint=True, to_field='id', related_name='rows', on_delete=OnDelete.CASCADE)),
                ('row_number', fields.IntField()),
                ('from_cell', fields.CharField(null=True, max_length=255)),
                ('to_cell', fields.CharField(null=True, max_length=255)),
                ('source', fields.ForeignKeyField('models.User', source_field='source_id', null=True, db_constraint=True, to_field='id', related_name='upload_rows_as_source', on_delete=OnDelete.CASCADE)),
                ('target', fields.ForeignKeyField('models.User', source_field='target_id', null=True, db_constraint=True, to_field='id', related_name='upload_rows_as_target', on_delete=OnDelete.CASCADE)),
                ('errors', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('has_errors', fields.BooleanField(default=False)),
            ],
            options={'table': 'bulk_upload_row', 'app': 'models', 'unique_together': (('upload', 'row_number'),), 'pk_attr': 'id', 'table_description': 'A row of an upload that requests a transfer or carries an error.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Evaluation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('evaluator', fields.ForeignKeyField('models.User', source_field='evaluator_id', db_index=True, db_constraint=True, to_field='id', related_name='evaluations', on_delete=OnDelete.CASCADE)),
                ('approver', fields.ForeignKeyField('models.User', source_field='approver_id', null=True, db_index=True, db_constraint=True, to_field='id', related_name='approvals', on_delete=OnDelete.CASCADE)),
                ('score', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'evaluation', 'app': 'models', 'pk_attr': 'id', 'table_description': 'QM evaluations. The evaluator and the approver both own one, and both move.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OwnedRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('data_type', fields.CharField(max_length=64)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='owned_records', on_delete=OnDelete.CASCADE)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'owned_record', 'app': 'models', 'indexes': [Index(fields=['owner_id', 'data_type'])], 'pk_attr': 'id', 'table_description': 'Rows of every data type that needs nothing more than an owner.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TeamMember',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='memberships', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', db_index=True, db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'team_member', 'app': 'models', 'unique_together': (('user', 'team'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Transfer',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='transfers', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='SINGLE: SINGLE\nBULK: BULK', enum_type=TransferKind, max_length=16)),
                ('status', fields.CharEnumField(default=TransferStatus.QUEUED, description='QUEUED: QUEUED\nRUNNING: RUNNING\nSUCCEEDED: SUCCEEDED\nPARTIALLY_FAILED: PARTIALLY_FAILED\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=TransferStatus, max_length=20)),
                ('requested_by', fields.ForeignKeyField('models.User', source_field='requested_by_id', null=True, db_constraint=True, to_field='id', related_name='requested_transfers', on_delete=OnDelete.CASCADE)),
                ('upload', fields.ForeignKeyField('models.BulkUpload', source_field='upload_id', null=True, unique=True, db_constraint=True, to_field='id', related_name='transfers', on_delete=OnDelete.CASCADE)),
                ('retry_of', fields.ForeignKeyField('models.Transfer', source_field='retry_of_id', null=True, unique=True, db_constraint=True, to_field='id', related_name='retries', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('total_pairs', fields.IntField(default=0)),
                ('processed_pairs', fields.IntField(default=0)),
                ('succeeded_pairs', fields.IntField(default=0)),
                ('failed_pairs', fields.IntField(default=0)),
                ('message', fields.TextField(null=True, unique=False)),
                ('last_event', fields.IntField(default=0)),
            ],
            options={'table': 'transfer', 'app': 'models', 'indexes': [Index(fields=['tenant_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EventRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transfer', fields.ForeignKeyField('models.Transfer', source_field='transfer_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('seq', fields.IntField()),
                ('data', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'transfer_event', 'app': 'models', 'unique_together': (('transfer', 'seq'),), 'pk_attr': 'id', 'table_description': 'Every event of a transfer, written in the transaction that caused it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TransferItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transfer', fields.ForeignKeyField('models.Transfer', source_field='transfer_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('row_number', fields.IntField(null=True)),
                ('source', fields.ForeignKeyField('models.User', source_field='source_id', db_constraint=True, to_field='id', related_name='items_as_source', on_delete=OnDelete.CASCADE)),
                ('target', fields.ForeignKeyField('models.User', source_field='target_id', db_constraint=True, to_field='id', related_name='items_as_target', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=ItemStatus.PENDING, description='PENDING: PENDING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nCANCELLED: CANCELLED', enum_type=ItemStatus, max_length=16)),
                ('error_code', fields.CharField(null=True, max_length=64)),
                ('error_message', fields.TextField(null=True, unique=False)),
                ('moved', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('overwritten', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'transfer_item', 'app': 'models', 'unique_together': (('transfer', 'position'),), 'indexes': [Index(fields=['transfer_id', 'status'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TransferLock',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='locks', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=64)),
                ('transfer', fields.ForeignKeyField('models.Transfer', source_field='transfer_id', db_index=True, db_constraint=True, to_field='id', related_name='locks', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'transfer_lock', 'app': 'models', 'unique_together': (('tenant', 'key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ViewTeam',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('view', fields.ForeignKeyField('models.View', source_field='view_id', db_constraint=True, to_field='id', related_name='view_teams', on_delete=OnDelete.CASCADE)),
                ('team', fields.ForeignKeyField('models.Team', source_field='team_id', db_constraint=True, to_field='id', related_name='team_views', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'view_team', 'app': 'models', 'unique_together': (('view', 'team'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
