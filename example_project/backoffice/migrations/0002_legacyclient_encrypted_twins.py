# Step 1 of encrypt_migrate (--add-columns): the encrypted twins of LegacyClient.

import alphapulse_encryption.fields
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('backoffice', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='legacyclient',
            name='credit_score_encrypted',
            field=alphapulse_encryption.fields.EncryptedInteger(blank=True, migrate_from='credit_score', null=True, verbose_name='credit score'),
        ),
        migrations.AddField(
            model_name='legacyclient',
            name='email_encrypted',
            field=alphapulse_encryption.fields.EncryptedSearchableString(blank=True, migrate_from='email', normalize='strip+lower', null=True, verbose_name='e-mail'),
        ),
        migrations.AddField(
            model_name='legacyclient',
            name='full_name_encrypted',
            field=alphapulse_encryption.fields.EncryptedString(blank=True, max_length=120, migrate_from='full_name', null=True, verbose_name='full name'),
        ),
        migrations.AddField(
            model_name='legacyclient',
            name='preferences_encrypted',
            field=alphapulse_encryption.fields.EncryptedJSON(blank=True, migrate_from='preferences', null=True, verbose_name='preferences'),
        ),
        migrations.AddField(
            model_name='legacyclient',
            name='tax_id_encrypted',
            field=alphapulse_encryption.fields.EncryptedString(blank=True, max_length=20, migrate_from='tax_id', null=True, verbose_name='tax id'),
        ),
        migrations.AddField(
            model_name='legacyclient',
            name='email_encrypted_search',
            field=alphapulse_encryption.fields.SearchTokenIndex('email_encrypted'),
        ),
    ]
