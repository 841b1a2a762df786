mod guards;
