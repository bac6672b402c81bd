__all__ = ['ttypes', 'constants', 'ImpalaService', 'ImpalaHiveServer2Service']
