__all__ = ['ttypes', 'constants', 'BeeswaxService']
