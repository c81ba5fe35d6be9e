# An upload row keeps the cells naming its source and its target, decided once by the parser,
# instead of the file's From and To cells: in the people form the To cell names the source.
from tortoise import migrations
from tortoise.migrations import operations as ops

# Rows of the people form held the From cell (the target) first: swap them. Its own inverse.
SWAP = (
    "UPDATE bulk_upload_row SET source_cell = target_cell, target_cell = source_cell "
    "WHERE upload_id IN (SELECT id FROM bulk_upload WHERE people_form)"
)


class Migration(migrations.Migration):
    dependencies = [('models', '0005_revert')]

    initial = False

    operations = [
        ops.RenameField(model_name='BulkUploadRow', old_name='from_cell', new_name='source_cell'),
        ops.RenameField(model_name='BulkUploadRow', old_name='to_cell', new_name='target_cell'),
        ops.RunSQL(SWAP, reverse_sql=SWAP),
    ]
